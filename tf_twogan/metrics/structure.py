"""Structural and pixel-difference measures: SSIM, SCD, CC, PSNR, RMSE, QABF, VIF."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..images import ImageError
from .inputs import _check_convention, _corr2, _triple


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
        raise ImageError("SSIM (python convention) needs images of at least 7x7 pixels")
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
        raise ImageError("SSIM (matlab convention) needs images of at least 11x11 pixels")
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
            raise ImageError("VIF needs images of at least 41x41 pixels")
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
