"""Input checks and small numeric helpers shared by the metrics (MATLAB ``corr2``, ``p log p``)."""
from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError
from ..images import ImageError

CONVENTIONS = ("matlab", "python")


def _gray(image, name: str = "image") -> np.ndarray:
    """A 2-D float64 copy-free view of ``image``; rejects other shapes and NaN."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ImageError(f"{name}: expected a 2-D gray image, got shape {array.shape}")
    if array.size == 0:
        raise ImageError(f"{name}: image is empty")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ImageError(f"{name}: contains NaN or infinite values")
    return array


def _triple(ir, vis, fused) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ir, vis, fused = _gray(ir, "ir"), _gray(vis, "vis"), _gray(fused, "fused")
    if not (ir.shape == vis.shape == fused.shape):
        raise ImageError(f"image sizes differ: ir {ir.shape}, vis {vis.shape}, fused {fused.shape}")
    return ir, vis, fused


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


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
