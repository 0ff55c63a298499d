"""Single-image measures of the fused image: EN, SD, SF, AG, EI."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..images import ImageError
from .inputs import _check_convention, _gray, _xlog


def en(fused, *, convention: str = "matlab") -> float:
    """Entropy (bits) of the fused image's 256-bin histogram.

    Roberts, van Aardt & Ahmed, "Assessment of image fusion procedures using
    entropy, image quality, and multispectral classification", J. Appl. Remote
    Sens. 2008.  ``"matlab"`` (VIFB ``metricsEntropy.m``): bins by
    ``floor(value)``; values of 256 and above fall outside the 256 bins but still
    count in the M*N denominator, as in the MATLAB loop.  ``"python"``:
    ``np.round`` (half to even) to uint8, as the CDDFuse ``Evaluator.EN``.
    """
    _check_convention(convention)
    f = _gray(fused, "fused")
    if f.min() < 0:
        raise ImageError("fused: EN needs values >= 0")
    if convention == "matlab":
        levels = np.floor(f).astype(np.int64).ravel()
        counts = np.bincount(levels, minlength=256)[:256]
    else:
        levels = np.round(f).astype(np.int64).ravel() % 256  # np.uint8 wraps
        counts = np.bincount(levels, minlength=256)
    p = counts / f.size
    return float(-np.sum(_xlog(p)))


def sd(fused, *, convention: str = "matlab") -> float:
    """Standard deviation of the fused image (population, divides by M*N).

    Rao, "In-fibre Bragg grating sensors", Meas. Sci. Technol. 1997 (as cited by
    VIFB).  ``"matlab"``: VIFB ``metricsVariance.m``, ``sqrt(sum((F - mean)^2) /
    (M*N))`` with the mean of the column means.  ``"python"``: ``np.std``.  The
    two agree to rounding.
    """
    _check_convention(convention)
    f = _gray(fused, "fused")
    if convention == "python":
        return float(np.std(f))
    mean = f.mean(axis=0).mean()
    return float(math.sqrt(float(np.sum((f - mean) ** 2)) / f.size))


def sf(fused, *, convention: str = "matlab") -> float:
    """Spatial frequency ``sqrt(RF^2 + CF^2)``.

    Eskicioglu & Fisher, "Image quality measures and their performance", IEEE
    Trans. Commun. 1995.  ``"matlab"`` (VIFB ``metricsSpatial_frequency.m``):
    both sums of squared neighbour differences are divided by M*N.
    ``"python"`` (CDDFuse): each is a plain mean, over M*(N-1) and (M-1)*N terms.
    """
    _check_convention(convention)
    f = _gray(fused, "fused")
    row = (f[:, 1:] - f[:, :-1]) ** 2
    col = (f[1:, :] - f[:-1, :]) ** 2
    if convention == "python":
        return float(np.sqrt(row.mean() + col.mean()))
    return float(math.sqrt(float(row.sum()) / f.size + float(col.sum()) / f.size))


def ag(fused, *, convention: str = "matlab") -> float:
    """Average gradient ``sum(sqrt((Gx^2 + Gy^2) / 2)) / ((M-1)(N-1))``.

    Cui et al., "Detail preserved fusion of visible and infrared images using
    regional saliency extraction and multi-scale image decomposition", Opt.
    Commun. 2015.  Gradients as MATLAB's ``gradient`` (central differences inside,
    one-sided at the border).  ``"matlab"``: VIFB ``metricsAvg_gradient.m``
    divides by (M-1)(N-1); ``"python"`` (CDDFuse) takes the mean over M*N.
    """
    _check_convention(convention)
    f = _gray(fused, "fused")
    if min(f.shape) < 2:
        raise ImageError("fused: AG needs an image of at least 2x2 pixels")
    gy, gx = np.gradient(f)
    s = np.sqrt((gx ** 2 + gy ** 2) / 2)
    if convention == "python":
        return float(s.mean())
    return float(s.sum() / ((f.shape[0] - 1) * (f.shape[1] - 1)))


def ei(fused) -> float:
    """Edge intensity: mean Sobel gradient magnitude (replicate border).

    Rajalingam & Priya, Int. J. Eng. Sci. Invention 2018; VIFB
    ``metricsEdge_intensity.m`` (``imfilter(F, fspecial('sobel'), 'replicate')``).
    Same in both conventions.
    """
    f = _gray(fused, "fused")
    sobel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
    gx = ndimage.correlate(f, sobel, mode="nearest")
    gy = ndimage.correlate(f, sobel.T, mode="nearest")
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))
