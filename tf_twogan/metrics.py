"""Image-fusion quality metrics: the paper's eight measures and common extras.

NumPy/SciPy only (no TensorFlow), fully vectorised: no Python loop runs over
pixels or windows.  Every function takes 2-D gray arrays (uint8 or float on the
0..255 scale) and returns a Python float.  The argument order is always
``(ir, vis, fused)``; single-image measures take ``(fused)``.

Two conventions (SPEC section 8):

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
as SPEC section 8 says.  VIFB's ``compute_metrics.m`` does *not* convert colour
fused images to gray (with ``rgb2gray`` or otherwise): it scores each colour
channel and averages the scores, so VIFB's published numbers for colour results
are channel means.  ``evaluate(..., color="channels")`` reproduces that, and
matches VIFB's stored MATLAB results (``tests/test_metrics.py``).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Iterable, NamedTuple

import numpy as np
from scipy import ndimage

__all__ = [
    "en", "mi", "ssim", "sf", "sd", "scd", "fmi", "qabf",
    "ag", "ei", "vif", "psnr", "rmse", "cc", "ce",
    "thermal_retention", "evaluate", "metric_names", "PAPER_METRICS", "PROJECT_METRICS", "DEFAULT_METRICS",
    "EXTRA_METRICS", "CONVENTIONS", "COLORS", "fmi_features",
]

PAPER_METRICS = ("EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF")
# this project's own measure, not the paper's: see thermal_retention
PROJECT_METRICS = ("TR",)
# what `twogan evaluate` and evaluate() compute unless told otherwise
DEFAULT_METRICS = PAPER_METRICS + PROJECT_METRICS
EXTRA_METRICS = ("AG", "EI", "VIF", "PSNR", "RMSE", "CC", "CE")
CONVENTIONS = ("matlab", "python")


# ----------------------------------------------------------------------------
# input handling


def _gray(image, name: str = "image") -> np.ndarray:
    """A 2-D float64 copy-free view of ``image``; rejects other shapes and NaN."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D gray image, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: image is empty")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _triple(ir, vis, fused) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ir, vis, fused = _gray(ir, "ir"), _gray(vis, "vis"), _gray(fused, "fused")
    if not (ir.shape == vis.shape == fused.shape):
        raise ValueError(f"image sizes differ: ir {ir.shape}, vis {vis.shape}, fused {fused.shape}")
    return ir, vis, fused


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def _corr2(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB ``corr2``: Pearson correlation of two whole images (NaN if one is flat)."""
    da, db = a - a.mean(), b - b.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(da * db) / math.sqrt(float(np.sum(da * da)) * float(np.sum(db * db))))


def _xlog(p: np.ndarray, log=np.log2) -> np.ndarray:
    """``p * log(p)`` with 0 where ``p == 0``."""
    out = np.zeros_like(p, dtype=np.float64)
    nonzero = p != 0
    out[nonzero] = p[nonzero] * log(p[nonzero])
    return out


# ----------------------------------------------------------------------------
# EN, SD, SF, AG, EI: single-image measures


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
        raise ValueError("fused: EN needs values >= 0")
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
        raise ValueError("fused: AG needs an image of at least 2x2 pixels")
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


# ----------------------------------------------------------------------------
# MI, CE: histogram measures


def _mutinf_vifb(a: np.ndarray, b: np.ndarray) -> float:
    """VIFB ``mutinf``: min-max normalise, ``int16(x*255)``, 256x256 histogram, ln."""
    def levels(x):
        low, high = x.min(), x.max()
        if high == low:
            return np.zeros(x.shape, dtype=np.int64)
        scaled = (x - low) / (high - low) * 255
        return np.floor(scaled + 0.5).astype(np.int64)  # int16(): half away from zero, x >= 0

    la, lb = levels(a).ravel(), levels(b).ravel()
    joint = np.bincount(la * 256 + lb, minlength=65536).astype(np.float64)
    ha = np.bincount(la, minlength=256).astype(np.float64)
    hb = np.bincount(lb, minlength=256).astype(np.float64)
    h_ab = -np.sum(_xlog(joint / joint.sum(), np.log))
    h_a = -np.sum(_xlog(ha / ha.sum(), np.log))
    h_b = -np.sum(_xlog(hb / hb.sum(), np.log))
    return float(h_a + h_b - h_ab)


def _mutinf_raw(a: np.ndarray, b: np.ndarray) -> float:
    """``sklearn.metrics.mutual_info_score`` on raw values (nats)."""
    _, ia = np.unique(a.ravel(), return_inverse=True)
    _, ib = np.unique(b.ravel(), return_inverse=True)
    nb = int(ib.max()) + 1
    joint = np.bincount(ia * nb + ib).astype(np.float64)
    joint = joint[joint > 0]
    pa = np.bincount(ia).astype(np.float64)
    pb = np.bincount(ib).astype(np.float64)
    n = float(a.size)

    def entropy(counts: np.ndarray) -> float:
        p = counts[counts > 0] / n
        return -float(np.sum(p * np.log(p)))

    return max(entropy(pa) + entropy(pb) - entropy(joint), 0.0)


def mi(ir, vis, fused, *, convention: str = "matlab") -> float:
    """Mutual information ``MI(VIS, F) + MI(IR, F)`` in nats.

    Qu, Zhang & Yan, "Information measure for performance of image fusion",
    Electron. Lett. 2002.  ``"matlab"`` (VIFB ``metricsMutinf.m``): each image is
    min-max normalised to 0..1 (a flat image becomes 0), scaled by 255 and rounded
    with ``int16`` (half away from zero), then a 256x256 joint histogram.
    ``"python"`` (CDDFuse): ``sklearn.metrics.mutual_info_score`` on the raw
    values, ``MI(F, IR) + MI(F, VIS)``.
    """
    _check_convention(convention)
    ir, vis, fused = _triple(ir, vis, fused)
    one = _mutinf_vifb if convention == "matlab" else _mutinf_raw
    return one(vis, fused) + one(ir, fused)


def ce(ir, vis, fused) -> float:
    """Cross entropy ``(CE(VIS, F) + CE(IR, F)) / 2`` of the 256-bin histograms (bits).

    Bulanon, Burks & Alchanatis, Biosystems Engineering 2009; VIFB
    ``metricsCross_entropy.m``: ``sum P1 log2(P1/P2)`` over the levels where both
    histograms are non-zero.  Needs integer-valued images on 0..255.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    for name, x in (("ir", ir), ("vis", vis), ("fused", fused)):
        if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.floor(x)):
            raise ValueError(f"{name}: CE needs integer values on 0..255")

    def one(src):
        p1 = np.bincount(src.astype(np.int64).ravel(), minlength=256) / src.size
        p2 = np.bincount(fused.astype(np.int64).ravel(), minlength=256) / src.size
        both = (p1 != 0) & (p2 != 0)
        return float(np.sum(p1[both] * np.log2(p1[both] / p2[both])))

    return (one(vis) + one(ir)) / 2.0


# ----------------------------------------------------------------------------
# SSIM


def _fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    half = (size - 1) / 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def _filter2_valid(kernel: np.ndarray, image: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(kernel, image, 'valid')`` (correlation, no padding)."""
    kh, kw = kernel.shape
    full = ndimage.correlate(image, kernel, mode="constant")
    top, left = kh // 2, kw // 2
    return full[top:image.shape[0] - (kh - 1 - top), left:image.shape[1] - (kw - 1 - left)]


def _gaussian_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``filter2(outer(g, g), image, 'valid')`` over the last two axes, as two 1-D
    passes (separable kernel) of ``scipy.ndimage.correlate1d``; a stack of images
    (leading axes) is filtered in one call each way."""
    n = len(g)
    half = n // 2
    rows = ndimage.correlate1d(image, g, axis=-2, mode="constant")[..., half:image.shape[-2] - half, :]
    return ndimage.correlate1d(rows, g, axis=-1, mode="constant")[..., half:image.shape[-1] - half]


def _ssim_gaussian_kernel() -> np.ndarray:
    x = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-(x * x) / (2 * 1.5 * 1.5))
    return g / g.sum()


def _ssim_map_mean(ua: np.ndarray, ua_sq_filtered: np.ndarray, uab_filtered: np.ndarray, b_stats) -> float:
    """VIFB ``ssim`` (Wang et al., 11x11 Gaussian, sigma 1.5, 'valid', L=255): the
    mean SSIM map from the Gaussian-filtered a, a*a, a*b and (b, b*b) = ``b_stats``.

    ``fspecial('gaussian', 11, 1.5)`` is the outer product of a normalised 1-D
    Gaussian with itself, so it is applied as two 1-D passes (:func:`_gaussian_valid`);
    this changes only the rounding (relative 1e-15).
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ub, ub_sq_filtered = b_stats
    ua_sq, ub_sq, ua_ub = ua * ua, ub * ub, ua * ub
    siga_sq = ua_sq_filtered - ua_sq
    sigb_sq = ub_sq_filtered - ub_sq
    sigab = uab_filtered - ua_ub
    ssim_map = ((2 * ua_ub + c1) * (2 * sigab + c2)) / ((ua_sq + ub_sq + c1) * (siga_sq + sigb_sq + c2))
    return float(ssim_map.mean())


def _ssim_skimage(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """``skimage.metrics.structural_similarity`` with its defaults.

    7x7 uniform window, sample covariance, K1=0.01, K2=0.03, mean over the map
    without a 3-pixel border.  ``data_range=2`` is what scikit-image (< 0.20) used
    for float arrays, which is how the CDDFuse evaluator calls it.
    """
    win = 7
    if min(a.shape) < win:
        raise ValueError("SSIM (python convention) needs images of at least 7x7 pixels")
    npix = win * win
    cov_norm = npix / (npix - 1)
    filt = lambda x: ndimage.uniform_filter(x, size=win, mode="reflect")
    ux, uy = filt(a), filt(b)
    uxx, uyy, uxy = filt(a * a), filt(b * b), filt(a * b)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(ir, vis, fused, *, convention: str = "matlab") -> float:
    """Structural similarity ``SSIM(VIS, F) + SSIM(IR, F)`` -- a SUM, in 0..2.

    Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 2004.  ``"matlab"`` (VIFB
    ``metricsSsim.m``): 11x11 Gaussian window (sigma 1.5) applied with
    ``filter2(..., 'valid')``, K1=0.01, K2=0.03, L=255, mean of the map.
    ``"python"`` (CDDFuse): scikit-image defaults (7x7 uniform window, sample
    covariance, data range 2 as old scikit-image assumed for float arrays).
    """
    _check_convention(convention)
    ir, vis, fused = _triple(ir, vis, fused)
    if convention == "python":
        return _ssim_skimage(vis, fused) + _ssim_skimage(ir, fused)
    if min(fused.shape) < 11:
        raise ValueError("SSIM (matlab convention) needs images of at least 11x11 pixels")
    g = _ssim_gaussian_kernel()
    # all eight filtered images in one separable pass each way
    stack = np.stack([fused, fused * fused, vis, vis * vis, vis * fused, ir, ir * ir, ir * fused])
    filtered = _gaussian_valid(stack, g)
    fused_stats = (filtered[0], filtered[1])
    return (_ssim_map_mean(filtered[2], filtered[3], filtered[4], fused_stats)
            + _ssim_map_mean(filtered[5], filtered[6], filtered[7], fused_stats))


# ----------------------------------------------------------------------------
# SCD, CC, PSNR, RMSE


def scd(ir, vis, fused) -> float:
    """Sum of the correlations of differences ``corr2(F-IR, VIS) + corr2(F-VIS, IR)``.

    Aslantas & Bendes, "A new image quality metric for image fusion: the sum of
    the correlations of differences", AEU 2015.  Differences are taken in floating
    point (no uint8 saturation); NaN when an image or a difference is flat, as
    MATLAB's ``corr2``.  Same in both conventions.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    return _corr2(fused - ir, vis) + _corr2(fused - vis, ir)


def cc(ir, vis, fused) -> float:
    """Correlation coefficient ``(corr2(IR, F) + corr2(VIS, F)) / 2``.

    As in the CDDFuse evaluator and most 2020+ tables (e.g. Ma et al., FusionGAN
    follow-ups).  Same in both conventions.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    return (_corr2(ir, fused) + _corr2(vis, fused)) / 2


def _vifb_mse(a: np.ndarray, b: np.ndarray) -> float:
    """VIFB's ``mse``: ``sqrt(sum((a-b)^2)) / (M*N)`` -- not a mean squared error."""
    return math.sqrt(float(np.sum((a - b) ** 2))) / a.size


def rmse(ir, vis, fused, *, convention: str = "matlab") -> float:
    """Root mean squared error between the sources and the fused image.

    Jagalingam & Hegde, Aquatic Procedia 2015.  ``"matlab"`` copies VIFB's
    ``metricsRmse.m`` literally: ``(e(VIS,F) + e(IR,F)) / 2`` with
    ``e = sqrt(sum((a-b)^2)) / (M*N)`` -- the norm divided by the pixel count, so
    its values are tiny.  ``"python"``: the square root of the CDDFuse MSE,
    ``sqrt((mean((IR-F)^2) + mean((VIS-F)^2)) / 2)``.
    """
    _check_convention(convention)
    ir, vis, fused = _triple(ir, vis, fused)
    if convention == "matlab":
        return (_vifb_mse(vis, fused) + _vifb_mse(ir, fused)) / 2.0
    return math.sqrt((np.mean((ir - fused) ** 2) + np.mean((vis - fused) ** 2)) / 2)


def psnr(ir, vis, fused, *, convention: str = "matlab") -> float:
    """Peak signal-to-noise ratio (dB) of the fused image against both sources.

    Jagalingam & Hegde, Aquatic Procedia 2015.  ``"matlab"`` (VIFB
    ``metricsPsnr.m``): ``20 log10(255 / sqrt(MES))`` with ``MES`` the mean of
    VIFB's ``mse`` (see :func:`rmse`).  ``"python"`` (CDDFuse):
    ``10 log10(max(F)^2 / MSE)`` with MSE the mean of the two true MSEs.
    Infinite when the error is zero.
    """
    _check_convention(convention)
    ir, vis, fused = _triple(ir, vis, fused)
    with np.errstate(divide="ignore"):
        if convention == "matlab":
            mes = (_vifb_mse(vis, fused) + _vifb_mse(ir, fused)) / 2.0
            return float(20 * np.log10(255 / np.sqrt(mes)))
        mse = (np.mean((ir - fused) ** 2) + np.mean((vis - fused) ** 2)) / 2
        return float(10 * np.log10(np.max(fused) ** 2 / mse))


# ----------------------------------------------------------------------------
# QABF


_QABF_PARAMS = dict(tg=0.9994, kg=-15.0, dg=0.5, ta=0.9879, ka=-22.0, da=0.8)


def _sobel_strength_orientation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``conv2(x, h, 'same')`` with the Sobel pair; orientation pi/2 where Sx == 0."""
    h1 = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
    h3 = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    sx = ndimage.convolve(x, h3, mode="constant")
    sy = ndimage.convolve(x, h1, mode="constant")
    g = np.sqrt(sx * sx + sy * sy)
    zero = sx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(zero, np.pi / 2, np.arctan(sy / np.where(zero, 1.0, sx)))
    return g, a


def _qabf_edge_preservation(g_src, a_src, g_f, a_f) -> np.ndarray:
    p = _QABF_PARAMS
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g_src > g_f, g_f / g_src, np.where(g_src == g_f, g_f, g_src / g_f))
    orient = 1 - np.abs(a_src - a_f) / (np.pi / 2)
    q_g = p["tg"] / (1 + np.exp(p["kg"] * (ratio - p["dg"])))
    q_a = p["ta"] / (1 + np.exp(p["ka"] * (orient - p["da"])))
    return q_g * q_a


def qabf(ir, vis, fused, *, convention: str = "matlab") -> float:
    """Gradient-based fusion performance Q^{AB/F}.

    Xydeas & Petrovic, "Objective image fusion performance measure", Electron.
    Lett. 2000.  Sobel operators, L = 1, Tg = 0.9994, kg = -15, Dg = 0.5,
    Ta = 0.9879, ka = -22, Da = 0.8.  Copies VIFB ``metricsQabf.m``: the images are
    scaled by 255 first (``255*im2double`` of an already double image), the
    orientation is pi/2 wherever the x-gradient is 0, and where a source's gradient
    magnitude equals the fused one the "relative strength" is the fused magnitude
    itself instead of 1.  ``"python"`` (CDDFuse ``Qabf``) is the same algorithm
    without the 255 scaling, which changes only that equal-magnitude quirk.
    """
    _check_convention(convention)
    ir, vis, fused = _triple(ir, vis, fused)
    scale = 255.0 if convention == "matlab" else 1.0
    g_a, a_a = _sobel_strength_orientation(scale * vis)
    g_b, a_b = _sobel_strength_orientation(scale * ir)
    g_f, a_f = _sobel_strength_orientation(scale * fused)
    q_af = _qabf_edge_preservation(g_a, a_a, g_f, a_f)
    q_bf = _qabf_edge_preservation(g_b, a_b, g_f, a_f)
    return float(np.sum(q_af * g_a + q_bf * g_b) / np.sum(g_a + g_b))


# ----------------------------------------------------------------------------
# VIF


def _vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    """Sheikh & Bovik's pixel-domain multi-scale VIF (``vifp_mscale``), 4 scales."""
    sigma_nsq, eps = 2.0, 1e-10
    num = den = 0.0
    for scale in range(1, 5):  # four scales, not pixels
        n = 2 ** (4 - scale + 1) + 1
        win = _fspecial_gaussian(n, n / 5.0)
        if scale > 1:
            ref = _filter2_valid(win, ref)[::2, ::2]
            dist = _filter2_valid(win, dist)[::2, ::2]
        if min(ref.shape) < n:
            raise ValueError("VIF needs images of at least 41x41 pixels")
        mu1, mu2 = _filter2_valid(win, ref), _filter2_valid(win, dist)
        s1 = np.maximum(_filter2_valid(win, ref * ref) - mu1 * mu1, 0)
        s2 = np.maximum(_filter2_valid(win, dist * dist) - mu2 * mu2, 0)
        s12 = _filter2_valid(win, ref * dist) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        small1 = s1 < eps
        g[small1] = 0
        sv[small1] = s2[small1]
        s1[small1] = 0
        small2 = s2 < eps
        g[small2] = 0
        sv[small2] = 0
        negative = g < 0
        sv[negative] = s2[negative]
        g[negative] = 0
        sv[sv <= eps] = eps
        num += float(np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq))))
        den += float(np.sum(np.log10(1 + s1 / sigma_nsq)))
    value = num / den if den != 0 else float("nan")
    return 1.0 if math.isnan(value) else value


def vif(ir, vis, fused) -> float:
    """Visual information fidelity ``VIF(IR, F) + VIF(VIS, F)`` (pixel domain).

    Sheikh & Bovik, "Image information and visual quality", IEEE TIP 2006; the
    multi-scale pixel-domain ``vifp_mscale`` as the CDDFuse evaluator computes its
    "VIFF" (sum over the two sources; NaN scores become 1).  This is *not* Han et
    al.'s VIFF (Information Fusion 2013).  Same in both conventions.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    return _vifp(ir, fused) + _vifp(vis, fused)


# ----------------------------------------------------------------------------
# FMI (Haghighat's fast FMI)


def _octave_sobel_edge(x: np.ndarray) -> np.ndarray:
    """``edge(x)`` of GNU Octave's image package 2.14 (Sobel, automatic threshold).

    Strength^2 from the Sobel pair normalised by 8 (replicate border), threshold
    ``4 * mean(strength^2)``, then Octave's simple thinning (a pixel is an edge if
    it beats both horizontal OR both vertical neighbours).  MATLAB's ``edge``
    thins differently; the reference platform here is Octave.
    """
    h = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8.0
    s2 = ndimage.correlate(x, h, mode="nearest") ** 2 + ndimage.correlate(x, h.T, mode="nearest") ** 2
    thresh2 = 4 * np.mean(s2)
    s2 = np.where(s2 <= thresh2, 0.0, s2)
    left = np.pad(s2, ((0, 0), (1, 0)))[:, :-1]
    right = np.pad(s2, ((0, 0), (0, 1)))[:, 1:]
    up = np.pad(s2, ((1, 0), (0, 0)))[:-1, :]
    down = np.pad(s2, ((0, 1), (0, 0)))[1:, :]
    return ((s2 > left) & (s2 > right)) | ((s2 > up) & (s2 > down))


def _rerange(x: np.ndarray) -> np.ndarray:
    low, high = x.min(), x.max()
    return np.ones_like(x) if high == low else (x - low) / (high - low)


def _fmi_feature(x: np.ndarray, feature: str) -> np.ndarray:
    if feature == "none":
        return x
    if feature == "gradient":
        # MATLAB's gradient(x) with one output: the derivative along the columns.
        return np.gradient(x, axis=1) if x.shape[1] > 1 else np.zeros_like(x)
    if feature == "edge":
        return _octave_sobel_edge(x).astype(np.float64)
    if feature == "dct":
        from scipy.fft import dctn

        return dctn(x, type=2, norm="ortho")
    if feature == "wavelet":
        try:
            import pywt
        except ImportError:
            raise ImportError(
                "FMI with feature='wavelet' needs PyWavelets: pip install PyWavelets "
                "(or the package's optional extra 'wavelet')"
            ) from None
        ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
        return _rerange(np.block([[ca, ch], [cv, cd]]))
    raise ValueError(f"FMI feature must be one of {fmi_features}, got {feature!r}")


fmi_features = ("none", "gradient", "edge", "dct", "wavelet")


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """All k x k windows of ``x`` as columns (k*k, n), each flattened column-major like ``x(:)``.

    Windows run along the second axis so that every per-element operation below is
    one contiguous vector operation over all windows.
    """
    view = np.lib.stride_tricks.sliding_window_view(x, (k, k))  # (H', W', row, col)
    return np.ascontiguousarray(view.transpose(3, 2, 0, 1)).reshape(k * k, -1)


def _seq_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the first axis, in order, as Octave's ``sum`` accumulates."""
    total = x[0].copy()
    for row in x[1:]:  # over the k*k window elements, not over windows
        total += row
    return total


def _normalise_windows(x: np.ndarray) -> np.ndarray:
    """Min-max normalise each window (column); a flat window becomes all ones."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    flat = span == 0
    out = x - low
    out /= np.where(flat, 1.0, span)
    return np.where(flat, 1.0, out)


def _window_pdf(x: np.ndarray, k: int) -> np.ndarray:
    """``x(:) ./ sum(sum(x))``: column sums first, then their sum, in order."""
    col_sums = np.stack([_seq_sum(x[c * k:(c + 1) * k]) for c in range(k)])
    return x / _seq_sum(col_sums)


def _xlog2_abs(p: np.ndarray) -> np.ndarray:
    """``p * log2(|p|)`` in float32, 0 where ``p == 0`` (MATLAB's ``real(p*log2(p))`` for p < 0).

    Float32 (SIMD, several times faster than float64): its 1e-7 relative error is
    far inside FMI's 1e-4 tolerance.  Magnitudes are clamped to float32's smallest
    normal number, so a nonzero p too small for float32 contributes about 0, as it
    should, instead of 0 * -inf.
    """
    p32 = p.astype(np.float32)
    magnitude = np.abs(p32)
    np.maximum(magnitude, np.finfo(np.float32).tiny, out=magnitude)
    np.log2(magnitude, out=magnitude)
    return np.multiply(p32, magnitude, out=magnitude)


def _xlog2_sum(p: np.ndarray) -> np.ndarray:
    """Sum of :func:`_xlog2_abs` over the element axes (all but the last), in float64."""
    terms = _xlog2_abs(p)
    return np.sum(terms.reshape(-1, terms.shape[-1]), axis=0, dtype=np.float64)


def _cumsum_rows(x: np.ndarray) -> np.ndarray:
    """``np.cumsum(x, axis=0)`` (the same sequential sums) as row additions, much faster
    than numpy's strided cumsum along the first axis."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, x.shape[0]):  # over the k*k window elements
        np.add(out[i - 1], x[i], out=out[i])
    return out


class _WindowStats(NamedTuple):
    """What one image's windows contribute to every pair they take part in."""

    norm: np.ndarray  # (l, n) min-max normalised windows
    pdf: np.ndarray  # (l, n) window "pdfs" as analysis_fmi.m forms them
    cdf: np.ndarray  # (l, n) their cumulative sums
    rev: np.ndarray  # (l, n) ends of the reversed partition: 1 - S_{l-2}, ..., 1 - S_0, 1
    dev: np.ndarray  # (l, n) pdf minus its (sequentially summed) mean
    dev_sq: np.ndarray  # (n,) sequential sum of dev^2
    sd: np.ndarray  # (n,) standard deviation of the element index under the pdf
    xlog: np.ndarray  # (n,) sum p log2 p
    tot: np.ndarray  # (n,) sum p
    cdf_sum: np.ndarray  # (n,) sum of the cdf


def _window_stats(windows: np.ndarray, k: int) -> _WindowStats:
    l, n = windows.shape
    norm = _normalise_windows(windows)
    pdf = _window_pdf(norm, k)
    dev = pdf - _seq_sum(pdf) / l
    index = np.arange(1, l + 1, dtype=np.float64)
    sd = np.sqrt(np.maximum(index ** 2 @ pdf - (index @ pdf) ** 2, 0))
    cdf = _cumsum_rows(pdf)
    rev = np.empty_like(cdf)
    np.subtract(1, cdf[-2::-1], out=rev[:-1])
    rev[-1] = 1
    return _WindowStats(norm, pdf, cdf, rev, dev, _seq_sum(dev * dev), sd,
                        _xlog2_sum(pdf), pdf.sum(axis=0), cdf.sum(axis=0))


def _fmi_pairs(s: _WindowStats, f: _WindowStats) -> np.ndarray:
    """Normalised feature MI of each window pair (columns of the source and fused stats).

    Haghighat's fast FMI: the joint pdf of two window "pdfs" is Nelsen's mixture
    ``phi * Frechet bound + (1 - phi) * product``.  Vectorised over windows; the
    only loops run over the k*k window elements.  The branch-deciding sums
    (window totals, mean, correlation numerator) are accumulated in order as
    Octave does, so the flat-window quirk comes out the same.

    The Frechet bound's mass lies on at most 2l cells: merging the two CDFs' ends
    cuts [0, 1] into 2l pieces, and the piece ending at F_i lies in cell
    (i, #S below F_i), the piece ending at S_j in cell (#F at or below S_j, j); its
    length is exactly MATLAB's double difference of ``min(F_i, S_j)``.  So the
    joint entropy is the product part's entropy in closed form, corrected on those
    cells, instead of l*l logarithms.  The lower bound (c < 0) is the upper bound
    against the reversed partition with ends 1 - S_{l-2}, ..., 1 - S_0, 1.

    All 2l pieces are handled as one (2, l, n) array: row 0 the pieces ending at
    F_i, row 1 those ending at S_j; the ranks come from one (l, l, n) comparison
    and the partner's values are gathered with one flat ``take``.
    """
    l, n = f.pdf.shape
    num = _seq_sum(s.dev * f.dev)
    c = np.where(num == 0, 0.0, num / np.sqrt(s.dev_sq * f.dev_sq))
    upper = c >= 0
    if upper.all():
        partner, partner_pdf = s.cdf, s.pdf
    else:
        partner = np.where(upper, s.cdf, s.rev)  # CDF ends of the second partition
        partner_pdf = np.where(upper, s.pdf, s.pdf[::-1])  # its interval masses

    # ends[0] = [0, F_0..F_{l-1}], ends[1] = [0, P_0..P_{l-1}]; masses[r] = [pdf, 0]
    ends = np.zeros((2, l + 1, n))
    ends[0, 1:], ends[1, 1:] = f.cdf, partner
    masses = np.zeros((2, l + 1, n))
    masses[0, :-1], masses[1, :-1] = f.pdf, partner_pdf
    less = (partner[None, :, :] < f.cdf[:, None, :]).view(np.uint8)  # less[i, j]: P_j < F_i
    below = np.empty((2, l, n), dtype=np.uint8)
    np.add.reduce(less, axis=1, dtype=np.uint8, out=below[0])  # #P below F_i
    np.add.reduce(less, axis=0, dtype=np.uint8, out=below[1])
    np.subtract(l, below[1], out=below[1])  # #F at or below P_j
    top = ends[:, 1:]
    counts = (l - below).astype(np.float64)
    counts *= top
    sum_min = np.sum(counts.reshape(2 * l, n), axis=0)  # sum_ij min(F_i, P_j)
    f_sum = f.cdf_sum
    # sum_ij max(F_i + S_j - 1, 0) = l sum F - sum_ij min(F_i, 1 - S_j), and the
    # values 1 - S_j are those of s.rev with its final 1 replaced by 1 - S_{l-1}
    lower_sum = l * f_sum - (sum_min - f_sum + np.minimum(f.cdf, 1 - s.cdf[-1]).sum(axis=0))
    cov = np.where(upper, sum_min, lower_sum) - f_sum * s.cdf_sum
    degenerate = (s.sd == 0) | (f.sd == 0) | (c == 0)
    coef = np.where(degenerate, 0.0, c / (cov / (f.sd * s.sd)))
    rest = 1 - coef

    # the piece ending at F_i borrows P_{below-1} and the partner's pdf at `below`
    # from row 1; the piece ending at P_j borrows F_{below-1} and f's pdf from row 0
    flat = below.astype(np.intp)
    flat *= n
    flat += _gather_offsets(l, n)
    mass = top - np.maximum(ends[:, :-1], ends.take(flat))
    np.copyto(mass, 0.0, where=below == l)  # a piece past the last cell (rounding) has no cell
    product_part = masses[:, :-1] * masses.take(flat)
    product_part *= rest
    cell = mass
    cell *= coef
    cell += product_part
    # where a piece has no mass the cell equals its product part: the terms cancel exactly
    correction = _xlog2_sum(cell) - _xlog2_sum(product_part)
    # sum over all l*l cells of q log2|q| for q = rest * f_i s_j, in closed form
    log_rest = np.where(rest == 0, 0.0, np.log2(np.abs(np.where(rest == 0, 1.0, rest))))
    product_all = rest * (log_rest * f.tot * s.tot + f.xlog * s.tot + f.tot * s.xlog)
    joint_ent = -(product_all + correction)

    s_ent, f_ent = -s.xlog, -f.xlog
    mutual = s_ent + f_ent - joint_ent
    return np.where(mutual == 0, 0.0, 2 * mutual / (s_ent + f_ent))


@functools.lru_cache(maxsize=8)
def _gather_offsets(l: int, n: int) -> np.ndarray:
    """Flat offsets into a (2, l+1, n) table: row 0 reads region 1, row 1 region 0."""
    offsets = np.empty((2, l, n), dtype=np.intp)
    offsets[0] = (l + 1) * n + np.arange(n)
    offsets[1] = np.arange(n)
    offsets.flags.writeable = False
    return offsets


_FMI_BLOCK = 8192  # windows per block: the block's temporaries stay in the L2 cache


def _fmi_block(a_w: np.ndarray, b_w: np.ndarray, f_w: np.ndarray, k: int) -> np.ndarray:
    """FMI map values ``(fmi_af + fmi_bf) / 2`` for windows given as columns.

    The fused window's statistics serve both halves: where the IR half overwrote
    it with its normalised form, normalising that again gives it back unchanged
    (its minimum is exactly 0 and its maximum exactly 1; a flat window stays all
    ones), and where it did not (IR window equal to the fused one), the VIS half
    normalises the raw window itself.  Pairs of equal windows are computed too and
    then replaced by 1, which costs less than gathering the others.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = _window_stats(f_w, k)
        equal_a = np.all(a_w == f_w, axis=0)
        score_a = np.where(equal_a, 1.0, _fmi_pairs(_window_stats(a_w, k), fs))
        # the IR half overwrote the fused window with its normalised form
        equal_b = np.all(b_w == np.where(equal_a, f_w, fs.norm), axis=0)
        score_b = np.where(equal_b, 1.0, _fmi_pairs(_window_stats(b_w, k), fs))
    return (score_a + score_b) / 2


def fmi(ir, vis, fused, feature: str = "none", window: int = 3) -> float:
    """Feature mutual information (Haghighat's fast FMI), 0..1.

    Haghighat, Aghagolzadeh & Seyedarabi, "A non-reference image fusion metric
    based on mutual information of image features", Comput. Electr. Eng. 2011;
    Haghighat & Razian, "Fast-FMI: non-reference image fusion metric", AICT 2014.
    Ports ``analysis_fmi(ir, vis, fused, feature, window)``: the mean over all
    ``window`` x ``window`` sliding windows of ``(nMI(IR_w, F_w) + nMI(VIS_w, F_w)) / 2``.

    Quirks copied from that code: windows are flattened column-major; a pair
    scores 1 when the raw source window equals the raw fused window; otherwise the
    fused window is overwritten with its min-max normalised form, and the second
    half (VIS) compares against and starts from that overwritten window; a flat
    window becomes 1/9 per pixel, whose mean, summed left to right in floating
    point, is not exactly 1/9 -- so two flat windows correlate (score about 1)
    where an exact mean would give 0.  Negative joint-pdf entries contribute
    ``-p log2 |p|`` (the real part MATLAB keeps).

    ``feature``: ``"none"`` (raw pixels, the paper's FMI), ``"gradient"`` (MATLAB
    ``gradient``: x-derivative), ``"edge"`` (Sobel edge map as GNU Octave's
    ``edge``), ``"dct"`` (orthonormal 2-D DCT of the whole image, ``dct2``),
    ``"wavelet"`` (discrete Meyer ``dwt2``, needs PyWavelets; its 62-tap ``dmey``
    differs from MATLAB's 102-tap filter, so this variant is not exact).
    Not the same convention split as the others: both conventions use this code.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    k = 2 * (int(window) // 2) + 1
    a, b, f = (_fmi_feature(x, feature) for x in (ir, vis, fused))
    if a.shape[0] < k or a.shape[1] < k:
        raise ValueError(f"FMI needs images of at least {k}x{k} pixels (after feature extraction)")
    h, w = a.shape[0] - k + 1, a.shape[1] - k + 1
    scores = np.empty(h * w)
    rows = max(1, _FMI_BLOCK // w)
    # blocks of window rows keep the working set in cache; each block is vectorised
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        a_w, b_w, f_w = (_windows(x[top:bottom + k - 1], k) for x in (a, b, f))
        scores[top * w:bottom * w] = _fmi_block(a_w, b_w, f_w, k)
    return float(np.mean(scores))


# ----------------------------------------------------------------------------
# thermal retention (this project's measure)

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


# ----------------------------------------------------------------------------
# evaluate


def _registry(convention: str) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]]:
    conv = dict(convention=convention)
    return {
        "EN": lambda ir, vis, f: en(f, **conv),
        "MI": lambda ir, vis, f: mi(ir, vis, f, **conv),
        "SSIM": lambda ir, vis, f: ssim(ir, vis, f, **conv),
        "SF": lambda ir, vis, f: sf(f, **conv),
        "SD": lambda ir, vis, f: sd(f, **conv),
        "SCD": scd,
        "FMI": lambda ir, vis, f: fmi(ir, vis, f, "none", 3),
        "QABF": lambda ir, vis, f: qabf(ir, vis, f, **conv),
        "AG": lambda ir, vis, f: ag(f, **conv),
        "EI": lambda ir, vis, f: ei(f),
        "VIF": vif,
        "PSNR": lambda ir, vis, f: psnr(ir, vis, f, **conv),
        "RMSE": lambda ir, vis, f: rmse(ir, vis, f, **conv),
        "CC": cc,
        "CE": ce,
        "TR": thermal_retention,
    }


def metric_names(metrics: Iterable[str] | str | None = None) -> list[str]:
    """Validated, upper-cased metric names; ``None`` means :data:`DEFAULT_METRICS` (the paper's eight and TR)."""
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",") if m.strip()]
    names = [str(m).strip().upper() for m in metrics]
    known = DEFAULT_METRICS + EXTRA_METRICS
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not names:
        raise ValueError("no metrics requested")
    return list(dict.fromkeys(names))


COLORS = ("gray", "channels")


def _to_gray_input(image, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        from tf_twogan.images import to_gray_uint8

        return to_gray_uint8(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        return array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a gray (H, W) or RGB (H, W, 3) image, got shape {array.shape}")
    return array


def _channel(image: np.ndarray, k: int) -> np.ndarray:
    return image[..., k] if image.ndim == 3 else image


def _evaluate_channels(ir, vis, fused, names, table, convention: str) -> dict[str, float]:
    """VIFB's ``compute_metrics.m`` on a colour fused image: every metric per colour
    channel (a gray source is used for each), then the mean of the three scores --
    except SF, whose ``[m, n] = size(fused)`` sees the channels side by side."""
    arrays = [np.asarray(x) for x in (ir, vis, fused)]
    arrays = [x[..., :3] if x.ndim == 3 and x.shape[-1] == 4 else (x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x)
              for x in arrays]
    ir, vis, fused = arrays
    for name, x in (("ir", ir), ("vis", vis), ("fused", fused)):
        if x.ndim != 2 and not (x.ndim == 3 and x.shape[-1] == 3):
            raise ValueError(f"{name}: expected a gray or RGB image, got shape {x.shape}")
    if fused.ndim == 2:  # a gray fused image is scored as one channel
        return _evaluate_gray(ir if ir.ndim == 2 else _to_gray_input(ir, "ir"),
                              vis if vis.ndim == 2 else _to_gray_input(vis, "vis"), fused, names, table)
    channels = [(_channel(ir, k), _channel(vis, k), fused[..., k]) for k in range(3)]
    for triple in channels:
        _triple(*triple)
    out = {}
    for name in names:
        if name == "SF":
            out[name] = sf(np.concatenate([fused[..., k] for k in range(3)], axis=1), convention=convention)
        else:
            out[name] = float(np.mean([table[name](*triple) for triple in channels]))
    return out


def _evaluate_gray(ir, vis, fused, names, table) -> dict[str, float]:
    ir, vis, fused = _triple(ir, vis, fused)
    return {name: float(table[name](ir, vis, fused)) for name in names}


def evaluate(
    ir, vis, fused, metrics: Iterable[str] | str | None = None, convention: str = "matlab", color: str = "gray"
) -> dict[str, float]:
    """Score one fused image: ``{"EN": ..., "MI": ..., ...}`` in the requested order.

    ``metrics``: names from :data:`DEFAULT_METRICS` (the default: the paper's eight,
    EN, MI, SSIM, SF, SD, SCD, FMI, QABF, and this project's thermal retention TR,
    :func:`thermal_retention`) and :data:`EXTRA_METRICS` (AG, EI, VIF,
    PSNR, RMSE, CC, CE), as a list or a comma-separated string.  ``convention``:
    ``"matlab"`` (default, the VIFB/Haghighat/Aslantas MATLAB code) or
    ``"python"`` (the CDDFuse-style Python evaluator); see the module docstring.
    Arrays are gray (H, W) or RGB (H, W, 3), uint8 or float on 0..255.

    ``color="gray"`` (default, SPEC section 8): RGB becomes
    ``round(0.299 R + 0.587 G + 0.114 B)`` before scoring.  ``color="channels"``
    reproduces VIFB's own tables for colour fused images: VIFB's
    ``compute_metrics.m`` never converts them to gray but scores each channel and
    averages (SF: channels side by side); this matches VIFB's stored results.
    """
    _check_convention(convention)
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    names = metric_names(metrics)
    table = _registry(convention)
    if color == "channels":
        return _evaluate_channels(ir, vis, fused, names, table, convention)
    ir, vis, fused = (_to_gray_input(x, n) for x, n in ((ir, "ir"), (vis, "vis"), (fused, "fused")))
    return _evaluate_gray(ir, vis, fused, names, table)
