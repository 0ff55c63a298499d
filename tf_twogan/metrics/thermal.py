"""Thermal retention (TR): this project's hot-target contrast measure, not the paper's."""
from __future__ import annotations

import math

import numpy as np


HOT_PERCENTILE = 98.0


def _target_contrast(image: np.ndarray, hot: np.ndarray) -> float:
    """(mean on ``hot`` - mean elsewhere) / standard deviation of the whole image."""
    spread = image.std()
    if spread == 0:
        return math.nan
    return float((image[hot].mean() - image[~hot].mean()) / spread)


def thermal_retention(ir, vis, fused, percentile: float = HOT_PERCENTILE) -> float:
    """TR: how much of the infrared image's hot-target contrast the fused image keeps.

    The hot targets are the infrared pixels at or above the pair's ``percentile``-th
    percentile (98: the brightest 2 %, people, engines, exhausts in TNO and RoadScene).
    The contrast of an image X on them is c(X) = (mean of X on hot - mean of X
    elsewhere) / std(X), and TR = c(fused) / c(IR): 1 keeps the targets as salient as
    the infrared image does, 0 loses them, a negative value inverts them.  The eight
    metrics of the paper reward a fused image that copies the visible one (it scores
    -0.23 on the TNO test pairs); TR does not.  NaN when the infrared image has no
    distinct hot pixels or the fused image is constant.  Not from the paper: this
    project's own (README, "The second layer"; docs/METRICS.md).  ``vis`` is unused
    (the common metric signature).
    """
    ir, fused = np.asarray(ir, dtype=np.float64), np.asarray(fused, dtype=np.float64)
    hot = ir >= np.percentile(ir, percentile)
    if hot.all():
        return math.nan
    reference = _target_contrast(ir, hot)
    if not reference or math.isnan(reference):
        return math.nan
    return _target_contrast(fused, hot) / reference
