"""Fusing real images with a trained two-layer GAN (docs/DESIGN.md section 5).

The chain is G1([IR, VIS]) and G2([VIS, IR]) -> G3([I_IRV, I_VIR]).  Each generator
reflect-pads its input by its margin (4 px) and runs a valid conv stack, so the
second layer sees the *first-layer outputs* reflect-padded at the image border.
:class:`Fuser` reproduces that chain exactly over the tiles that
:mod:`tf_twogan.tiling` plans (each tile gathers its input rows plus an 8 px halo,
runs G1/G2, gathers the first-layer rows G3 needs plus a 4 px halo, and runs G3), so
the stitched result equals whole-image inference up to float rounding, while memory
is bounded by the tile.  Colour visible images are fused through their luma and get
their chroma back (:mod:`tf_twogan.colour`).  Files and folders are handled by
:class:`~tf_twogan.fuser_base.BaseFuser`, shared with the FusionGAN fuser, and colour
by :class:`~tf_twogan.fuser_base.LumaFuser`, shared with the exported-model fuser.

Example:
    >>> fuser = Fuser()                     # the shipped checkpoint
    >>> fuser.fuse_files("ir/1.png", "vis/1.png", "fused/1.png")
    >>> fuser.fuse_folders("ir", "vis", "fused")
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import TwoGanError
from .fuser_base import LumaFuser, check_fuse_paths
from .precision import PRECISIONS, default_jit_compile
from .tiling import MIN_TILE, plan_tiles


class InferenceError(TwoGanError, ValueError):
    """A checkpoint or an option cannot be used for inference; the message says why."""


def check_tile(tile: int | None) -> None:
    """Refuse a ``tile`` option that is neither None, 0 (never tile) nor at least :data:`~tf_twogan.tiling.MIN_TILE`."""
    if tile is not None and (not isinstance(tile, int) or (tile != 0 and tile < MIN_TILE)):
        raise InferenceError(f"tile must be 0 (never tile) or at least {MIN_TILE} pixels, got {tile!r}")


# ----------------------------------------------------------------------------- checkpoint

def _shipped_hint(folder: Path) -> str:
    """For a bare name like ``fusiongan_lite``: where the shipped checkpoints live."""
    from .checkpoints import checkpoint_dir

    shipped = checkpoint_dir().parent
    names = sorted(path.name for path in shipped.iterdir() if path.is_dir() and not path.name.startswith("_"))
    if len(folder.parts) == 1 and folder.name in names:
        return f" (did you mean the shipped checkpoint {shipped / folder.name}?)"
    return f" (shipped checkpoints: {', '.join(names)} in {shipped})"


def load_chain(checkpoint: str | os.PathLike | None = None):
    """``(g1, g2, g3, swap_second_layer)`` of a checkpoint or run folder (default: the shipped one)."""
    from .checkpoints import checkpoint_dir
    from .config import TwoGanConfig
    from .networks_io import load_generators

    folder = Path(checkpoint) if checkpoint is not None else checkpoint_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such checkpoint folder{_shipped_hint(folder)}")
    missing = [name for name in ("g1.keras", "g2.keras", "g3.keras") if not (folder / name).is_file()]
    if missing and (folder / "g.keras").is_file():
        raise InferenceError(f"{folder}: is a FusionGAN run (g.keras), not a two-layer GAN: it cannot be exported or "
                             f"fuse videos; `twogan fuse --checkpoint {folder}` fuses images with it")
    if missing:
        raise FileNotFoundError(f"{folder}: not a two-layer GAN checkpoint (missing {', '.join(missing)})")
    swap = TwoGanConfig.from_json(folder / "config.json").train.swap_second_layer if (folder / "config.json").is_file() else False
    g1, g2, g3 = load_generators(folder)
    for name, generator in (("g1", g1), ("g2", g2), ("g3", g3)):
        if generator.settings.pad_mode != "reflect":
            raise InferenceError(f"{folder / (name + '.keras')}: pad_mode {generator.settings.pad_mode!r} shrinks the "
                                 "image; inference needs pad_mode 'reflect'")
    if g1.margin != g2.margin:
        raise InferenceError(f"{folder}: g1 and g2 have different margins ({g1.margin}, {g2.margin})")
    return g1, g2, g3, swap


class FoldedStack:
    """A generator's valid conv stack for inference, with BatchNorm folded into the convs.

    At inference BatchNorm is the affine map ``(x - mean) * s + beta`` with
    ``s = gamma / sqrt(moving_variance + epsilon)``, so conv -> BatchNorm is one conv
    with kernel ``k * s`` and bias ``(b - mean) * s + beta``.  Each hidden layer then
    runs as one conv + bias + LeakyReLU, which oneDNN fuses, instead of a conv followed
    by elementwise passes over the whole activation map (measured: 15% less time for
    the paper widths, 45% for lite; the result differs from the Keras layers by float
    rounding only).

    ``compute_dtype="bfloat16"`` runs the hidden convs in bfloat16 and the 1x1 output
    conv in float32 (as Keras' ``mixed_bfloat16`` policy would).
    """

    def __init__(self, generator, compute_dtype: str = "float32") -> None:
        import tensorflow as tf
        from .models import conv_weights

        self.compute_dtype = tf.as_dtype(compute_dtype)
        self.single_input = generator.settings.input_mode == "single"
        self.leaky_slope = generator.settings.leaky_slope
        hidden = generator.hidden_layers
        self.hidden = []
        for conv, norm in zip(hidden[0::3], hidden[1::3]):
            kernel, bias = conv_weights(conv)
            kernel, bias = kernel.astype(np.float64), 0.0 if bias is None else bias.astype(np.float64)
            scale = norm.gamma.numpy() / np.sqrt(norm.moving_variance.numpy().astype(np.float64) + norm.epsilon)
            self.hidden.append((tf.constant(kernel * scale, self.compute_dtype),
                                tf.constant((bias - norm.moving_mean.numpy()) * scale + norm.beta.numpy(), self.compute_dtype)))
        kernel, bias = conv_weights(generator.output_conv)
        self.output = (tf.constant(kernel, tf.float32), tf.constant(bias, tf.float32))

    def __call__(self, images):
        """(N, H, W, 2) in -1..1 -> (N, H - 2m, W - 2m, 1) pre-tanh, float32."""
        import tensorflow as tf

        x = tf.cast(images[..., :1] if self.single_input else images, self.compute_dtype)
        for kernel, bias in self.hidden:
            x = tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias), self.leaky_slope)
        kernel, bias = self.output
        return tf.nn.bias_add(tf.nn.conv2d(tf.cast(x, tf.float32), kernel, 1, "VALID"), bias)


# ----------------------------------------------------------------------------- fuser

class Fuser(LumaFuser):
    """Load a two-layer GAN checkpoint once and fuse many IR/VIS pairs.

    Args:
        checkpoint: folder with ``g1.keras``, ``g2.keras``, ``g3.keras`` (and the
            ``config.json`` that trained them); default: the shipped checkpoint.
        precision: ``"float32"`` or ``"bfloat16"`` (conv stacks in bfloat16).
        tile: output tile side in pixels; ``None`` tiles automatically with
            with :attr:`auto_tile` when an image has more than ``auto_tile**2``
            pixels (512 for the paper widths, 1440 for lite); ``0`` never tiles.
        jit_compile: compile the per-tile chain with XLA; ``None`` picks what measured
            faster on this CPU (:func:`~tf_twogan.precision.default_jit_compile`): on only
            for bfloat16 on a CPU without native bfloat16.
        generators: ``(g1, g2, g3, swap_second_layer)`` built in this process, used
            instead of loading ``checkpoint`` (notebooks, benchmarks).

    Example:
        >>> fuser = Fuser(tile=512)
        >>> fused = fuser.fuse_arrays(ir, vis)         # uint8, vis's colour kept
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, precision: str = "float32",
                 tile: int | None = None, jit_compile: bool | None = None, generators: tuple | None = None) -> None:
        import tensorflow as tf

        if precision not in PRECISIONS:
            raise InferenceError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        check_tile(tile)
        if jit_compile is None:
            jit_compile = default_jit_compile(precision)
        self.checkpoint, self.precision, self.tile, self.jit_compile = checkpoint, precision, tile, jit_compile
        g1, g2, g3, self.swap_second_layer = load_chain(checkpoint) if generators is None else generators
        self.generators = (g1, g2, g3)
        self.stacks = tuple(FoldedStack(g, precision) for g in (g1, g2, g3))
        self.first_margin, self.second_margin = g1.margin, g3.margin
        spec = tf.TensorSpec([None], tf.int32)
        self._chain = tf.function(self._chain_tile, jit_compile=jit_compile, reduce_retracing=True,
                                  input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32), spec, spec])

    @property
    def min_size(self) -> int:
        """Smallest image side the reflect padding allows."""
        return max(self.first_margin, self.second_margin) + 1

    def _chain_tile(self, block, second_rows, second_cols):
        """[IR, VIS] input blocks (N, h, w, 2) on -1..1 -> fused tiles (N, H, W) on 0..255 (float32)."""
        import tensorflow as tf

        g1, g2, g3 = self.stacks
        irv, vir = tf.tanh(g1(block)), tf.tanh(g2(block[..., ::-1]))
        first = tf.concat([vir, irv] if self.swap_second_layer else [irv, vir], axis=-1)
        second = tf.gather(tf.gather(first, second_rows, axis=1), second_cols, axis=2)
        fused = tf.tanh(g3(second))
        return fused[..., 0] * 127.5 + 127.5

    @property
    def widest_layer(self) -> int:
        """Channels of the widest layer of the three generators."""
        return max(max(g.settings.widths) for g in self.generators)

    def fuse_luma(self, ir: np.ndarray, vis: np.ndarray, progress: bool = False) -> np.ndarray:
        """Fuse two gray images (uint8, or float on 0..255) of the same size; float32 (H, W) on 0..255.

        ``progress`` shows a bar over the tiles when there is more than one.
        """
        height, width = ir.shape
        tile = self.tile_for(height, width)
        fused = np.empty((height, width), np.float32)
        plans = plan_tiles(height, width, tile, self.first_margin, self.second_margin)
        for plan in self.tile_bar(plans, height, width, tile, progress):
            rows, cols = np.ix_(plan.input_rows, plan.input_cols)
            block = np.stack([ir[rows, cols], vis[rows, cols]], axis=-1)[None].astype(np.float32)
            block = (block - np.float32(127.5)) / np.float32(127.5)
            fused[plan.rows, plan.cols] = self._chain(block, plan.second_rows.astype(np.int32),
                                                      plan.second_cols.astype(np.int32)).numpy()[0]
        return fused

    def fuse_luma_batch(self, irs: np.ndarray, vises: np.ndarray) -> np.ndarray:
        """Fuse N gray pairs of one size in a single call of the chain, untiled: (N, H, W) -> float32 (N, H, W).

        Equals :meth:`fuse_luma` per pair up to float rounding (batched convolutions may
        sum in another order).  For video frames (benchmarks/bench_video.py).
        """
        count, height, width = irs.shape
        plan = next(plan_tiles(height, width, max(height, width), self.first_margin, self.second_margin))
        rows, cols = np.ix_(plan.input_rows, plan.input_cols)
        block = np.stack([irs[:, rows, cols], vises[:, rows, cols]], axis=-1).astype(np.float32)
        block = (block - np.float32(127.5)) / np.float32(127.5)
        return self._chain(block, plan.second_rows.astype(np.int32), plan.second_cols.astype(np.int32)).numpy()



def fuse(ir: str | os.PathLike, vis: str | os.PathLike, out: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
         tile: int | None = None, precision: str = "float32", skip_unmatched: bool = False,
         progress: bool = False, names: Iterable[str] | None = None, resize_vis: bool = False) -> list[Path]:
    """``twogan fuse`` with a two-layer checkpoint in one call: the paths are checked before the
    checkpoint is loaded, then :meth:`~tf_twogan.fuser_base.BaseFuser.fuse_paths` fuses two files
    into ``out`` (a file, or an existing folder to hold ``<ir name>.png``) or two folders into the
    folder ``out`` (only ``names`` if given).  ``resize_vis`` resizes each visible image onto its
    infrared grid first."""
    check_fuse_paths(ir, vis, out, names)  # before the checkpoint is loaded
    return Fuser(checkpoint, precision=precision, tile=tile).fuse_paths(
        ir, vis, out, skip_unmatched=skip_unmatched, progress=progress, names=names, resize_vis=resize_vis)
