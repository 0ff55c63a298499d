"""Image-fusion quality metrics: the paper's eight measures and common extras.

NumPy/SciPy only (no TensorFlow), fully vectorised: no Python loop runs over
pixels or windows.  Every function takes 2-D gray arrays (uint8 or float on the
0..255 scale) and returns a Python float.  The argument order is always
``(ir, vis, fused)``; single-image measures take ``(fused)``.

Two conventions (docs/DESIGN.md section 8):

``"matlab"`` (the default)
    An exact port of the MATLAB code the field uses: the VIFB toolbox
    (``metrics/metrics*.m`` of github:xingchenzhang/VIFB, called as
    ``metricsX(vis, ir, fused)``), Haghighat's fast FMI (``analysis_fmi.m`` as
    copied in github:hli1221/imagefusion-nestfuse) and Aslantas's SCD.  The
    quirks of that code are copied on purpose (documented per function), and the
    values agree with it run under GNU Octave 7.3 to a relative 1e-6 (FMI 1e-4);
    see ``tests/data/metrics_reference.json`` and ``docs/METRICS.md``.
``"python"``
    The Python ``Evaluator`` that many 2023+ papers copy (e.g. CDDFuse,
    github:Zhaozixiang1228/MMIF-CDDFuse ``utils/Evaluator.py``): MI from a plain
    joint histogram of raw values, SSIM with scikit-image's defaults, SD by
    ``np.std``, SF and AG as plain means, PSNR from the true MSE.  Offered only to
    compare with those papers; never the default.

Colour: :func:`evaluate` turns RGB input into gray with
``round(0.299 R + 0.587 G + 0.114 B)`` (:func:`tf_twogan.images.to_gray_uint8`),
as docs/DESIGN.md section 8 says.  VIFB's ``compute_metrics.m`` does *not* convert colour
fused images to gray (with ``rgb2gray`` or otherwise): it scores each colour
channel and averages the scores, so VIFB's published numbers for colour results
are channel means.  ``evaluate(..., color="channels")`` reproduces that, and
matches VIFB's stored MATLAB results (``tests/test_metrics.py``).

The package's modules, each named for what it owns: ``single`` (EN, SD, SF, AG, EI),
``information`` (MI, CE), ``structure`` (SSIM, SCD, CC, PSNR, RMSE, QABF, VIF),
``feature_mi`` (FMI), ``thermal`` (TR), ``registry`` (names, :func:`evaluate`) and
``inputs`` (input checks shared by all).  Import from ``tf_twogan.metrics``: the
names in ``__all__`` are the public API.
"""
from __future__ import annotations

from .feature_mi import fmi, fmi_features
from .information import ce, mi
from .inputs import CONVENTIONS
from .registry import COLORS, DEFAULT_METRICS, EXTRA_METRICS, PAPER_METRICS, PROJECT_METRICS, evaluate, metric_names
from .single import ag, ei, en, sd, sf
from .structure import cc, psnr, qabf, rmse, scd, ssim, vif
from .thermal import HOT_PERCENTILE, thermal_retention

__all__ = [
    "en", "mi", "ssim", "sf", "sd", "scd", "fmi", "qabf",
    "ag", "ei", "vif", "psnr", "rmse", "cc", "ce",
    "thermal_retention", "evaluate", "metric_names", "PAPER_METRICS", "PROJECT_METRICS", "DEFAULT_METRICS",
    "EXTRA_METRICS", "CONVENTIONS", "COLORS", "fmi_features", "HOT_PERCENTILE",
]
