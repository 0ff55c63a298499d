"""Qualitative figures: the paper's Fig. 7-style grid with an enlarged red-box region.

Rows are sources and methods (IR, VIS, FusionGAN, ours, ...), columns are image
pairs; each panel shows the image with a red box and, in its lower corner, the box's
content enlarged.  matplotlib with the Agg backend; written atomically.  No TensorFlow.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import atomic_write
from .images import to_gray


def enlarged_inset(image: np.ndarray, box: tuple[int, int, int], scale: int = 2) -> np.ndarray:
    """Gray image with ``box`` = (y, x, side) enlarged ``scale`` times into the lower-right corner."""
    gray = to_gray(image)
    y, x, side = box
    crop = gray[y:y + side, x:x + side]
    inset = np.kron(crop, np.ones((scale, scale)))
    out = gray.copy()
    h, w = inset.shape
    h, w = min(h, out.shape[0]), min(w, out.shape[1])
    out[-h:, -w:] = inset[:h, :w]
    return out


def hot_target_box(ir: np.ndarray, side: int) -> tuple[int, int, int]:
    """The ``side`` x ``side`` window (y, x, side) that stands out most hotly from its surroundings.

    Zoom boxes placed there show what a fusion keeps of the thermal targets, which is
    what the infrared image is fused for.  The score is the window's mean infrared
    intensity minus the mean of the image pixels in the 3x larger window around it, so
    a small hot person beats a large warm field and a dark frame border counts for
    nothing; summed-area tables give every window in one pass.
    """
    gray = to_gray(ir).astype(np.float64)
    side = min(side, *gray.shape)
    rows, columns = gray.shape[0] - side + 1, gray.shape[1] - side + 1

    def window_sums(image: np.ndarray, size: int, offset: int) -> np.ndarray:
        table = np.pad(np.pad(image, side).cumsum(0).cumsum(1), ((1, 0), (1, 0)))[offset:, offset:]
        sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
        return sums[:rows, :columns]

    inner = window_sums(gray, side, side) / side**2
    context = window_sums(gray, 3 * side, 0) / window_sums(np.ones_like(gray), 3 * side, 0)
    y, x = np.unravel_index(int(np.argmax(inner - context)), inner.shape)
    return int(y), int(x), side


def comparison_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], boxes: Sequence[tuple[int, int, int]],
                    path: str | os.PathLike, column_titles: Sequence[str] | None = None, scale: int = 2) -> Path:
    """Fig. 7-style grid: ``rows`` = [(label, [image per pair])], one red box per pair (y, x, side)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import patches
    from matplotlib import pyplot as plt

    n_rows, n_cols = len(rows), len(boxes)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.1 * n_rows), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c, (image, box) in enumerate(zip(images, boxes)):
            axis = axes[r][c]
            shown = enlarged_inset(image, box, scale)
            axis.imshow(shown, cmap="gray", vmin=0, vmax=255)
            y, x, side = box
            axis.add_patch(patches.Rectangle((x, y), side, side, fill=False, edgecolor="red", linewidth=1.2))
            h, w = min(side * scale, shown.shape[0]), min(side * scale, shown.shape[1])
            axis.add_patch(patches.Rectangle((shown.shape[1] - w, shown.shape[0] - h), w, h, fill=False,
                                             edgecolor="red", linewidth=1.2))
            axis.set_xticks([]), axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(label, fontsize=10)
            if r == 0 and column_titles:
                axis.set_title(column_titles[c], fontsize=10)
    figure.tight_layout()
    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    finally:
        plt.close(figure)
    return Path(path)
