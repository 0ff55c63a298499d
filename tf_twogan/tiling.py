"""The exact tiling plan of the two-layer chain (docs/DESIGN.md section 5).

Each generator reflect-pads its input by its margin and runs a valid conv stack, so
the second layer sees the first-layer outputs reflect-padded at the image border.
Every padded row or column is an index into the unpadded image
(:func:`reflect_indices`), so a tile gathers the input rows it needs (output tile +
both margins, reflected at the image border) and, for G3, the first-layer rows it
needs (reflected at the border of the *whole* first-layer output): the stitched
result equals whole-image inference.  This module only plans (numpy); the
:class:`~tf_twogan.inference.Fuser` runs the plan.

A runtime that only has the whole chain (an exported model,
:class:`~tf_twogan.runtime.RuntimeFuser`) tiles with :func:`plan_halo_tiles`
instead: each tile's input gets a halo of both margins (clipped at the image
border, where the chain's own reflect padding is the right one), and the output
is cropped back to the tile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

# Without an explicit tile, an image is tiled when its widest float32 activation
# (pixels x widest layer x 4 bytes) would exceed this budget, with square tiles of
# the largest side (a multiple of 32) that fits it: above 512 x 512 pixels with tile
# 512 for the paper widths (256 channels), above 1440 x 1440 with tile 1440 for lite
# (32 channels).  Peak memory is about 4-5 such activations plus TensorFlow (~0.8 GB)
# and the images (measured: benchmarks/bench_tiling_memory.py, docs/INFERENCE.md).
ACTIVATION_BUDGET = 2**28
MIN_TILE = 8
"""Smallest explicit tile side a :class:`~tf_twogan.inference.Fuser` accepts."""


def reflect_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices into an axis of ``size`` for padded positions ``start..stop-1``.

    Position ``-k`` maps to ``k`` and ``size - 1 + k`` to ``size - 1 - k``: the
    ``REFLECT`` mode of ``tf.pad`` (edge not repeated), as :meth:`Generator.pad` uses.
    Valid for positions within ``size - 1`` of the axis.
    """
    positions = np.arange(start, stop)
    positions = np.abs(positions)
    return np.where(positions > size - 1, 2 * (size - 1) - positions, positions)


@dataclass(frozen=True)
class TilePlan:
    """What one output tile needs: source rows/cols of the input (padded by the
    first-layer margin around the first-layer block it feeds) and, for G3, the
    positions of its reflect-padded input inside that first-layer block."""

    rows: slice
    cols: slice
    input_rows: np.ndarray
    input_cols: np.ndarray
    second_rows: np.ndarray
    second_cols: np.ndarray


def _axis_plan(start: int, stop: int, size: int, first_margin: int, second_margin: int) -> tuple[np.ndarray, np.ndarray]:
    # G3 reads first-layer positions start - m2 .. stop + m2 (reflected at the image border) ...
    second = reflect_indices(start - second_margin, stop + second_margin, size)
    low, high = int(second.min()), int(second.max()) + 1
    # ... and the first layer computes the block low..high from inputs reflected by m1.
    return reflect_indices(low - first_margin, high + first_margin, size), second - low


def plan_tiles(height: int, width: int, tile: int, first_margin: int, second_margin: int) -> Iterator[TilePlan]:
    """Row-major tiles of at most ``tile`` x ``tile`` output pixels covering the image."""
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        input_rows, second_rows = _axis_plan(top, bottom, height, first_margin, second_margin)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            input_cols, second_cols = _axis_plan(left, right, width, first_margin, second_margin)
            yield TilePlan(slice(top, bottom), slice(left, right), input_rows, input_cols, second_rows, second_cols)


@dataclass(frozen=True)
class HaloTile:
    """One output tile (``rows``, ``cols``) of a whole-chain tiling: the chain runs on the
    input ``input_rows``/``input_cols`` and its output, cropped to ``crop_rows``/``crop_cols``, is the tile."""

    rows: slice
    cols: slice
    input_rows: slice
    input_cols: slice
    crop_rows: slice
    crop_cols: slice


def _halo_axis(start: int, stop: int, size: int, halo: int) -> tuple[slice, slice]:
    low, high = max(0, start - halo), min(size, stop + halo)
    return slice(low, high), slice(start - low, stop - low)


def plan_halo_tiles(height: int, width: int, tile: int, halo: int) -> Iterator[HaloTile]:
    """Row-major tiles of at most ``tile`` x ``tile`` output pixels for a chain run on each tile's input plus ``halo``.

    With ``halo`` = first-layer margin + second-layer margin, every first-layer value G3
    reads is computed from true input pixels (a padded one lies farther than the first
    margin from the tile), so the crop equals whole-image inference; at the image border
    the input is not extended and the chain reflects there itself.
    """
    for top in range(0, height, tile):
        input_rows, crop_rows = _halo_axis(top, min(top + tile, height), height, halo)
        for left in range(0, width, tile):
            input_cols, crop_cols = _halo_axis(left, min(left + tile, width), width, halo)
            yield HaloTile(slice(top, min(top + tile, height)), slice(left, min(left + tile, width)),
                           input_rows, input_cols, crop_rows, crop_cols)


def tile_side(tile: int | None, auto_tile: int, height: int, width: int) -> int:
    """The tile side for an image of this size: ``tile`` if given, ``auto_tile`` when ``tile`` is
    None and the image has more than ``auto_tile**2`` pixels, else the whole image (also for ``tile=0``)."""
    if tile:
        return tile
    if tile is None and height * width > auto_tile**2:
        return auto_tile
    return max(height, width)


def auto_tile_side(widest_layer: int) -> int:
    """Largest tile side (a multiple of 32) whose float32 activation of ``widest_layer``
    channels fits :data:`ACTIVATION_BUDGET`: 512 for 256 channels, 1440 for 32."""
    return max(32, int(np.sqrt(ACTIVATION_BUDGET / (4 * widest_layer))) // 32 * 32)
