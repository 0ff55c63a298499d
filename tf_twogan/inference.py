"""Fusing real images with a trained two-layer GAN (docs/DESIGN.md section 5).

The chain is G1([IR, VIS]) and G2([VIS, IR]) -> G3([I_IRV, I_VIR]).  Each generator
reflect-pads its input by its margin (4 px) and runs a valid conv stack, so the
second layer sees the *first-layer outputs* reflect-padded at the image border.
:class:`Fuser` reproduces that chain exactly over tiles: every padded row or column
is an index into the unpadded image (:func:`reflect_indices`), so a tile gathers the
input rows it needs (output tile + 8 px halo, reflected at the image border), runs
G1/G2 on them, gathers the first-layer rows G3 needs (+ 4 px halo, reflected at the
border of the *whole* first-layer output), and runs G3.  The stitched result equals
whole-image inference up to float rounding, while memory is bounded by the tile.

Colour: the BT.601 luma Y of a colour visible image is fused and its Cb/Cr are put
back (full-range JPEG YCbCr, the FusionGAN-family convention), so an RGB visible
image gives an RGB fused image of the same size.  Gray stored as identical channels
is treated as gray; 16-bit images are scaled linearly to 0..255.

Example:
    >>> fuser = Fuser()                     # the shipped checkpoint
    >>> fuser.fuse_files("ir/1.png", "vis/1.png", "fused/1.png")
    >>> fuser.fuse_folders("ir", "vis", "fused")
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import TwoGanError
from .images import (IMAGE_SUFFIXES, ImageError, is_gray_as_rgb, list_images, natural_key, read_image, resize_box, to_uint8,
                     write_image)
from .locking import remove_stray_temporaries
from .precision import PRECISIONS, default_jit_compile

# Without an explicit tile, an image is tiled when its widest float32 activation
# (pixels x widest layer x 4 bytes) would exceed this budget, with square tiles of
# the largest side (a multiple of 32) that fits it: above 512 x 512 pixels with tile
# 512 for the paper widths (256 channels), above 1440 x 1440 with tile 1440 for lite
# (32 channels).  Peak memory is about 4-5 such activations plus TensorFlow (~0.8 GB)
# and the images (measured: benchmarks/bench_tiling_memory.py, docs/INFERENCE.md).
ACTIVATION_BUDGET = 2**28
MIN_TILE = 8

# Full-range BT.601 (JPEG) YCbCr; the luma weights are images.BT601_LUMA.
_RGB_TO_CBCR = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)
_CR_TO_R, _CB_TO_G, _CR_TO_G, _CB_TO_B = 1.402, -0.344136, -0.714136, 1.772


class InferenceError(TwoGanError, ValueError):
    """A checkpoint or an option cannot be used for inference; the message says why."""


# ----------------------------------------------------------------------------- colour

@dataclass
class LumaImage:
    """An image as the network sees it: gray ``luma`` (uint8 or float32, 0..255) plus, for a
    colour image, its chroma ``cb``/``cr`` (float32, BT.601 offsets: zero for gray)."""

    luma: np.ndarray
    cb: np.ndarray | None = None
    cr: np.ndarray | None = None

    @property
    def is_colour(self) -> bool:
        return self.cb is not None


def split_luma(image: np.ndarray, label: str = "image") -> LumaImage:
    """Gray/colour image (uint8, uint16 or float on 0..255) -> :class:`LumaImage`.

    Gray, and gray stored as 3 or 4 identical channels, keep their values; RGB(A)
    becomes BT.601 Y, Cb, Cr (alpha is ignored).  ``label`` names the image in errors.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ImageError(f"{label}: unsupported image shape {image.shape} (expected gray, RGB or RGBA)")
    if image.size == 0:
        raise ImageError(f"{label}: image is empty (shape {image.shape})")
    if image.dtype == np.uint16:
        scale = np.float32(255.0 / 65535.0)
    elif image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating):
        scale = np.float32(1.0)
    else:
        raise ImageError(f"{label}: unsupported pixel type {image.dtype} (expected uint8, uint16 or float)")
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        raise ImageError(f"{label}: contains NaN or infinite pixel values")
    if image.ndim == 3 and is_gray_as_rgb(image):
        image = image[..., 0]
    if image.ndim == 2:
        # 8-bit gray stays uint8 (exact on 0..255) and becomes float per tile: a quarter of the memory
        return LumaImage(image if image.dtype == np.uint8 else image.astype(np.float32) * scale)
    rgb = image[..., :3].astype(np.float32) * scale
    from .images import BT601_LUMA

    luma = rgb @ BT601_LUMA.astype(np.float32)
    cb, cr = np.moveaxis(rgb @ _RGB_TO_CBCR.T, -1, 0)
    return LumaImage(luma, cb, cr)


def merge_luma(luma: np.ndarray, like: LumaImage) -> np.ndarray:
    """Fused luma (float, 0..255) -> uint8 image: gray, or RGB with ``like``'s chroma put back.

    A gray result is rounded in place: ``luma`` is overwritten.
    """
    if not like.is_colour:
        np.add(luma, np.float32(0.5), out=luma)
        np.floor(luma, out=luma)
        return np.clip(luma, 0, 255, out=luma).astype(np.uint8)
    channels = (luma + _CR_TO_R * like.cr, luma + _CB_TO_G * like.cb + _CR_TO_G * like.cr, luma + _CB_TO_B * like.cb)
    return np.stack([to_uint8(channel) for channel in channels], axis=-1)


# ----------------------------------------------------------------------------- tiling

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


def auto_tile_side(widest_layer: int) -> int:
    """Largest tile side (a multiple of 32) whose float32 activation of ``widest_layer``
    channels fits :data:`ACTIVATION_BUDGET`: 512 for 256 channels, 1440 for 32."""
    return max(32, int(np.sqrt(ACTIVATION_BUDGET / (4 * widest_layer))) // 32 * 32)


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

class Fuser:
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
        if tile is not None and (not isinstance(tile, int) or (tile != 0 and tile < MIN_TILE)):
            raise InferenceError(f"tile must be 0 (never tile) or at least {MIN_TILE} pixels, got {tile!r}")
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
    def auto_tile(self) -> int:
        """Tile side used automatically (see :func:`auto_tile_side`)."""
        return auto_tile_side(max(max(g.settings.widths) for g in self.generators))

    def tile_for(self, height: int, width: int) -> int:
        """The tile side used for an image of this size (the whole image if untiled)."""
        if self.tile:
            return self.tile
        if self.tile is None and height * width > self.auto_tile**2:
            return self.auto_tile
        return max(height, width)

    def fuse_luma(self, ir: np.ndarray, vis: np.ndarray, progress: bool = False) -> np.ndarray:
        """Fuse two gray images (uint8, or float on 0..255) of the same size; float32 (H, W) on 0..255.

        ``progress`` shows a bar over the tiles when there is more than one.
        """
        from .console import tqdm

        height, width = ir.shape
        tile = self.tile_for(height, width)
        fused = np.empty((height, width), np.float32)
        count = -(-height // tile) * -(-width // tile)
        plans = plan_tiles(height, width, tile, self.first_margin, self.second_margin)
        for plan in tqdm(plans, total=count, desc="tiles", unit="tile", disable=not progress or count == 1):
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

    def _check_pair(self, ir: LumaImage, vis: LumaImage, ir_label: str, vis_label: str) -> None:
        if ir.luma.shape != vis.luma.shape:
            raise ImageError(f"{ir_label} and {vis_label} differ in size: "
                             f"{'x'.join(map(str, ir.luma.shape))} vs {'x'.join(map(str, vis.luma.shape))} (height x width)")
        if min(ir.luma.shape) < self.min_size:
            raise ImageError(f"{ir_label}: image too small ({'x'.join(map(str, ir.luma.shape))}); "
                             f"both sides must be at least {self.min_size} pixels")

    def fuse_arrays(self, ir: np.ndarray, vis: np.ndarray, *, ir_label: str = "ir", vis_label: str = "vis",
                    as_float: bool = False, progress: bool = False) -> np.ndarray:
        """Fuse one pair of arrays (gray, gray-as-RGB or RGB(A); uint8, uint16 or float 0..255).

        Returns uint8 (H, W), or (H, W, 3) when ``vis`` is in colour (its chroma is put
        back); with ``as_float`` the fused luma as float32 (H, W) on 0..255.
        """
        ir_image, vis_image = split_luma(ir, ir_label), split_luma(vis, vis_label)
        self._check_pair(ir_image, vis_image, ir_label, vis_label)
        luma = self.fuse_luma(ir_image.luma, vis_image.luma, progress=progress)
        return luma if as_float else merge_luma(luma, vis_image)

    def fuse_files(self, ir_path: str | os.PathLike, vis_path: str | os.PathLike, out_path: str | os.PathLike,
                   progress: bool = False, resize_vis: bool = False) -> Path:
        """Read, fuse and write one pair atomically; the format follows ``out_path``'s suffix.

        Refuses to overwrite either input.  ``progress`` shows a bar over tiles.
        ``resize_vis`` first resizes the visible image onto the infrared grid
        (:func:`~tf_twogan.images.resize_box`), for pairs from two cameras such as RoadScene.
        """
        out_path = Path(out_path)
        if out_path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ImageError(f"{out_path}: output suffix must be one of {', '.join(IMAGE_SUFFIXES)}")
        if out_path.is_dir():
            raise ImageError(f"{out_path}: is a folder, expected an output image file")
        for source in (ir_path, vis_path):
            if out_path.exists() and out_path.resolve() == Path(source).resolve():
                raise ImageError(f"{out_path}: is an input image; choose another output path")
        ir, vis = read_image(ir_path), read_image(vis_path)
        if resize_vis:
            vis = resize_box(vis, *ir.shape[:2])
        fused = self.fuse_arrays(ir, vis, ir_label=str(ir_path), vis_label=str(vis_path), progress=progress)
        return write_image(out_path, fused)

    def fuse_folders(self, ir_dir: str | os.PathLike, vis_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     skip_unmatched: bool = False, suffix: str = ".png", progress: bool = False,
                     names: Iterable[str] | None = None, resize_vis: bool = False) -> list[Path]:
        """Fuse every pair of two folders matched by file name into ``out_dir/<name><suffix>``.

        Names found in only one folder are listed in an :class:`ImageError` unless
        ``skip_unmatched``, in which case the matched pairs are fused and the others
        ignored.  With ``names`` (e.g. :func:`~tf_twogan.images.split_names`) only those
        pairs are fused, and each must be in both folders.  ``resize_vis`` as in
        :meth:`fuse_files`.  Every pair is checked before the first output is written.
        Outputs already in ``out_dir`` are complete (each is written atomically) and kept,
        so a rerun after an interruption fuses only the rest; the temporaries of the
        interrupted run are removed.  Returns the output paths in natural name order
        (a :class:`FusedFolder`, whose ``skipped`` lists the outputs kept).
        """
        ir_images, vis_images = list_images(ir_dir), list_images(vis_dir)
        if names is not None:
            wanted = set(names)
            missing = sorted(wanted - (set(ir_images) & set(vis_images)), key=natural_key)
            if missing:
                raise ImageError(f"{ir_dir}, {vis_dir}: listed pairs not found in both folders: {', '.join(missing)}")
            ir_images = {name: path for name, path in ir_images.items() if name in wanted}
            vis_images = {name: path for name, path in vis_images.items() if name in wanted}
        only_ir = sorted(set(ir_images) - set(vis_images), key=natural_key)
        only_vis = sorted(set(vis_images) - set(ir_images), key=natural_key)
        names = sorted(set(ir_images) & set(vis_images), key=natural_key)
        if (only_ir or only_vis) and not skip_unmatched:
            parts = [f"only in {folder}: {', '.join(found)}" for folder, found in ((ir_dir, only_ir), (vis_dir, only_vis)) if found]
            raise ImageError("images do not pair up by name (" + "; ".join(parts) + "); use skip_unmatched / --skip-unmatched to fuse the rest")
        if not names:
            raise ImageError(f"{ir_dir} and {vis_dir}: no image names in common")
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise ImageError(f"output suffix must be one of {', '.join(IMAGE_SUFFIXES)}, got {suffix!r}")
        for source in (ir_dir, vis_dir):
            if Path(out_dir).resolve() == Path(source).resolve():
                raise ImageError(f"{out_dir}: is an input folder; choose another output folder")
        from .console import tqdm

        remove_stray_temporaries(out_dir)  # left by an interrupted run
        result = FusedFolder()
        targets = {name: Path(out_dir) / f"{name}{suffix}" for name in names}
        done = {name for name in names if targets[name].is_file() and not targets[name].is_symlink()}  # a link is replaced
        result.skipped = [targets[name] for name in names if name in done]
        todo = [name for name in names if name not in done]
        for name in tqdm(todo, desc="check", unit="pair", disable=not progress):  # every pair before any output
            self.check_files(ir_images[name], vis_images[name], resize_vis=resize_vis)
        for name in tqdm(todo, desc="fuse", unit="pair", disable=not progress):
            self.fuse_files(ir_images[name], vis_images[name], targets[name], resize_vis=resize_vis)
        result.extend(targets[name] for name in names)
        return result

    def check_files(self, ir_path: str | os.PathLike, vis_path: str | os.PathLike, resize_vis: bool = False) -> None:
        """Raise :class:`ImageError` naming the file if this pair cannot be fused (unreadable, sizes, too small)."""
        ir, vis = read_image(ir_path), read_image(vis_path)
        if resize_vis:
            vis = resize_box(vis, *ir.shape[:2])
        self._check_pair(split_luma(ir, str(ir_path)), split_luma(vis, str(vis_path)), str(ir_path), str(vis_path))


class FusedFolder(list):
    """The output paths of a folder fusion; ``skipped``: those already there, kept and not fused again."""

    skipped: list[Path]


def check_output_path(source: Path, out: str | os.PathLike) -> None:
    """Refuse an ``out`` that does not suit ``source`` (a file or a folder) before any work is done."""
    text, out = os.fspath(out), Path(out)
    if source.is_dir():
        if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
            raise ImageError(f"{out}: folder inputs need an output folder, not an image file name (e.g. --out fused/)")
        if out.is_file():
            raise ImageError(f"{out}: is a file; folder inputs need an output folder")
    elif not out.is_dir() and (text.endswith(("/", os.sep)) or not out.suffix):
        raise ImageError(f"{out}: a single pair needs an output file name, e.g. {out / (source.stem + '.png')}")


def fuse(ir: str | os.PathLike, vis: str | os.PathLike, out: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
         tile: int | None = None, precision: str = "float32", skip_unmatched: bool = False,
         progress: bool = False, names: Iterable[str] | None = None, resize_vis: bool = False) -> list[Path]:
    """``twogan fuse``: fuse two files into ``out`` (a file, or an existing folder to hold
    ``<ir name>.png``), or two folders into the folder ``out`` (only ``names`` if given).
    ``resize_vis`` resizes each visible image onto its infrared grid first."""
    ir, vis = Path(ir), Path(vis)
    if ir.is_dir() != vis.is_dir():
        raise ImageError(f"--ir {ir} and --vis {vis}: give two files or two folders")
    check_output_path(ir, out)
    fuser = Fuser(checkpoint, precision=precision, tile=tile)
    if not ir.is_dir() and Path(out).is_dir():
        out = Path(out) / f"{ir.stem}.png"
    if names is not None and not ir.is_dir():
        raise ImageError(f"{ir}: a subset of a split file needs folder inputs")
    if ir.is_dir():
        return fuser.fuse_folders(ir, vis, out, skip_unmatched=skip_unmatched, progress=progress, names=names,
                                  resize_vis=resize_vis)
    return [fuser.fuse_files(ir, vis, out, progress=progress, resize_vis=resize_vis)]
