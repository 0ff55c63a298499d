"""Classical reference fusions for the results tables: pixel average and max-select.

Both work on the gray (BT.601 luma) images on the 0..255 scale; they give every
table a floor that any learned method should beat on some metrics.  No TensorFlow.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .images import pair_folders, read_image, to_gray, write_image


def average_fusion(ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """(IR + VIS) / 2, rounded half up to uint8."""
    return np.floor((to_gray(ir) + to_gray(vis)) / 2 + 0.5).clip(0, 255).astype(np.uint8)


def max_fusion(ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Pixel-wise maximum of IR and VIS (the brighter source wins), uint8."""
    return np.floor(np.maximum(to_gray(ir), to_gray(vis)) + 0.5).clip(0, 255).astype(np.uint8)


REFERENCE_FUSIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "average": average_fusion,
    "max-select": max_fusion,
}


def fuse_folder(method: Callable[[np.ndarray, np.ndarray], np.ndarray], ir_dir: str | os.PathLike,
                vis_dir: str | os.PathLike, out_dir: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Fuse the pairs of two folders (matched by name) with ``method`` into ``out_dir/<name>.png``."""
    return [write_image(Path(out_dir) / f"{name}.png", method(read_image(ir), read_image(vis)))
            for name, ir, vis in pair_folders(ir_dir, vis_dir, names)]
