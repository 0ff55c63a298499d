"""Histogram measures between the sources and the fused image: MI, CE."""
from __future__ import annotations


import numpy as np

from ..images import ImageError
from .inputs import _check_convention, _triple, _xlog


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
            raise ImageError(f"{name}: CE needs integer values on 0..255")

    def one(src):
        p1 = np.bincount(src.astype(np.int64).ravel(), minlength=256) / src.size
        p2 = np.bincount(fused.astype(np.int64).ravel(), minlength=256) / src.size
        both = (p1 != 0) & (p2 != 0)
        return float(np.sum(p1[both] * np.log2(p1[both] / p2[both])))

    return (one(vis) + one(ir)) / 2.0
