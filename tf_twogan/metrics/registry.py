"""The metric names, the name -> function registry, and :func:`evaluate` (one fused image, gray or per colour channel)."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..config import ConfigError
from ..images import ImageError
from .feature_mi import fmi
from .information import ce, mi
from .inputs import _check_convention, _triple
from .single import ag, ei, en, sd, sf
from .structure import cc, psnr, qabf, rmse, scd, ssim, vif
from .thermal import thermal_retention

PAPER_METRICS = ("EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF")
# this project's own measure, not the paper's: see thermal_retention
PROJECT_METRICS = ("TR",)
# what `twogan evaluate` and evaluate() compute unless told otherwise
DEFAULT_METRICS = PAPER_METRICS + PROJECT_METRICS
EXTRA_METRICS = ("AG", "EI", "VIF", "PSNR", "RMSE", "CC", "CE")


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
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not names:
        raise ConfigError("no metrics requested")
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
        raise ImageError(f"{name}: expected a gray (H, W) or RGB (H, W, 3) image, got shape {array.shape}")
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
            raise ImageError(f"{name}: expected a gray or RGB image, got shape {x.shape}")
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

    ``color="gray"`` (default, docs/DESIGN.md section 8): RGB becomes
    ``round(0.299 R + 0.587 G + 0.114 B)`` before scoring.  ``color="channels"``
    reproduces VIFB's own tables for colour fused images: VIFB's
    ``compute_metrics.m`` never converts them to gray but scores each channel and
    averages (SF: channels side by side); this matches VIFB's stored results.
    """
    _check_convention(convention)
    if color not in COLORS:
        raise ConfigError(f"color must be one of {COLORS}, got {color!r}")
    names = metric_names(metrics)
    table = _registry(convention)
    if color == "channels":
        return _evaluate_channels(ir, vis, fused, names, table, convention)
    ir, vis, fused = (_to_gray_input(x, n) for x, n in ((ir, "ir"), (vis, "vis"), (fused, "fused")))
    return _evaluate_gray(ir, vis, fused, names, table)
