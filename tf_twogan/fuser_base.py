"""What every fuser does around its network: files, folders and their safety checks.

A fuser turns an IR/VIS pair of arrays into a fused image; that is the one thing
each implementation owns (:meth:`BaseFuser.fuse_arrays`, with
:meth:`BaseFuser.check_arrays` saying whether a pair can be fused).  Everything
around it is the same for every network and lives here once: reading and writing
files (atomically, never over an input), pairing two folders by name
(:func:`~tf_twogan.images.pair_folders`), checking every pair before the first
output is written, and keeping the complete outputs of an interrupted run.

A :class:`LumaFuser` fuses gray pairs only and handles colour around that
(:mod:`tf_twogan.colour`).  The implementations: :class:`tf_twogan.inference.Fuser`
(the two-layer GAN), :class:`tf_twogan.runtime.RuntimeFuser` (the same chain exported
to ONNX, OpenVINO or LiteRT) and :class:`tf_twogan.fusiongan.FusionGanFuser` (an
original FusionGAN checkpoint or a FusionGAN trained here).  No TensorFlow here.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable

import numpy as np

from .colour import LumaImage, merge_luma, split_luma
from .images import IMAGE_SUFFIXES, ImageError, pair_folders, read_image, resize_box, write_image
from .locking import remove_stray_temporaries
from .tiling import auto_tile_side, tile_side


class FusedFolder(list):
    """The output paths of a folder fusion; ``skipped``: those already there, kept and not fused again."""

    skipped: list[Path]


def check_pair_shapes(ir_shape: tuple[int, ...], vis_shape: tuple[int, ...], ir_label: str, vis_label: str,
                      min_size: int = 1) -> None:
    """Raise :class:`ImageError` naming the images if their (height, width) differ or a side is below ``min_size``."""
    if ir_shape[:2] != vis_shape[:2]:
        raise ImageError(f"{ir_label} and {vis_label} differ in size: "
                         f"{'x'.join(map(str, ir_shape[:2]))} vs {'x'.join(map(str, vis_shape[:2]))} (height x width); "
                         "for pairs from two cameras add --resize-vis (resize_vis=True) to resize the visible image onto the infrared grid")
    if min(ir_shape[:2]) < min_size:
        raise ImageError(f"{ir_label}: image too small ({'x'.join(map(str, ir_shape[:2]))}); "
                         f"both sides must be at least {min_size} pixels")


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


def check_fuse_paths(ir: str | os.PathLike, vis: str | os.PathLike, out: str | os.PathLike,
                     names: Iterable[str] | None = None) -> None:
    """Refuse inputs and an output that do not go together, before a network is loaded."""
    ir, vis = Path(ir), Path(vis)
    if ir.is_dir() != vis.is_dir():
        raise ImageError(f"--ir {ir} and --vis {vis}: give two files or two folders")
    if names is not None and not ir.is_dir():
        raise ImageError(f"{ir}: a subset of a split file needs folder inputs")
    check_output_path(ir, out)


class BaseFuser(ABC):
    """Fuses IR/VIS pairs of arrays (the subclass's network), files and folders (here)."""

    @abstractmethod
    def check_arrays(self, ir: np.ndarray, vis: np.ndarray, ir_label: str = "ir", vis_label: str = "vis") -> None:
        """Raise :class:`ImageError` naming the images if this pair cannot be fused (sizes, too small, pixel type)."""

    @abstractmethod
    def fuse_arrays(self, ir: np.ndarray, vis: np.ndarray, *, ir_label: str = "ir", vis_label: str = "vis",
                    progress: bool = False) -> np.ndarray:
        """Fuse one pair of arrays as :func:`~tf_twogan.images.read_image` returns them; uint8, ready to write."""

    def _read_pair(self, ir_path: str | os.PathLike, vis_path: str | os.PathLike,
                   resize_vis: bool) -> tuple[np.ndarray, np.ndarray]:
        ir, vis = read_image(ir_path), read_image(vis_path)
        return ir, resize_box(vis, *ir.shape[:2]) if resize_vis else vis

    def check_files(self, ir_path: str | os.PathLike, vis_path: str | os.PathLike, resize_vis: bool = False) -> None:
        """Raise :class:`ImageError` naming the file if this pair cannot be fused (unreadable, sizes, too small)."""
        self.check_arrays(*self._read_pair(ir_path, vis_path, resize_vis), str(ir_path), str(vis_path))

    def fuse_files(self, ir_path: str | os.PathLike, vis_path: str | os.PathLike, out_path: str | os.PathLike,
                   progress: bool = False, resize_vis: bool = False) -> Path:
        """Read, fuse and write one pair atomically; the format follows ``out_path``'s suffix.

        Refuses to overwrite either input.  ``progress`` is passed to :meth:`fuse_arrays`.
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
        ir, vis = self._read_pair(ir_path, vis_path, resize_vis)
        fused = self.fuse_arrays(ir, vis, ir_label=str(ir_path), vis_label=str(vis_path), progress=progress)
        return write_image(out_path, fused)

    def fuse_folders(self, ir_dir: str | os.PathLike, vis_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     skip_unmatched: bool = False, suffix: str = ".png", progress: bool = False,
                     names: Iterable[str] | None = None, resize_vis: bool = False) -> FusedFolder:
        """Fuse every pair of two folders matched by file name into ``out_dir/<name><suffix>``.

        Pairing (``names``, ``skip_unmatched``) as in :func:`~tf_twogan.images.pair_folders`.
        ``resize_vis`` as in :meth:`fuse_files`.  Every pair is checked before the first
        output is written.  Outputs already in ``out_dir`` are complete (each is written
        atomically) and kept, so a rerun after an interruption fuses only the rest; the
        temporaries of the interrupted run are removed.  Returns the output paths in
        natural name order (``names``' order if given); ``skipped`` lists the outputs kept.
        """
        from .console import tqdm

        pairs = pair_folders(ir_dir, vis_dir, names, skip_unmatched=skip_unmatched)
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise ImageError(f"output suffix must be one of {', '.join(IMAGE_SUFFIXES)}, got {suffix!r}")
        for source in (ir_dir, vis_dir):
            if Path(out_dir).resolve() == Path(source).resolve():
                raise ImageError(f"{out_dir}: is an input folder; choose another output folder")
        remove_stray_temporaries(out_dir)  # left by an interrupted run
        result = FusedFolder(Path(out_dir) / f"{name}{suffix}" for name, _, _ in pairs)
        result.skipped = [target for target in result if target.is_file() and not target.is_symlink()]  # a link is replaced
        kept = set(result.skipped)
        todo = [(ir, vis, target) for (_, ir, vis), target in zip(pairs, result) if target not in kept]
        for ir, vis, _ in tqdm(todo, desc="check", unit="pair", disable=not progress):  # every pair before any output
            self.check_files(ir, vis, resize_vis=resize_vis)
        for ir, vis, target in tqdm(todo, desc="fuse", unit="pair", disable=not progress):
            self.fuse_files(ir, vis, target, resize_vis=resize_vis)
        return result

    def fuse_paths(self, ir: str | os.PathLike, vis: str | os.PathLike, out: str | os.PathLike,
                   skip_unmatched: bool = False, progress: bool = False, names: Iterable[str] | None = None,
                   resize_vis: bool = False) -> list[Path]:
        """``twogan fuse``: two files into ``out`` (a file, or an existing folder to hold ``<ir name>.png``),
        or two folders into the folder ``out`` (:meth:`fuse_folders`)."""
        check_fuse_paths(ir, vis, out, names)
        if Path(ir).is_dir():
            return self.fuse_folders(ir, vis, out, skip_unmatched=skip_unmatched, progress=progress, names=names,
                                     resize_vis=resize_vis)
        if Path(out).is_dir():
            out = Path(out) / f"{Path(ir).stem}.png"
        return [self.fuse_files(ir, vis, out, progress=progress, resize_vis=resize_vis)]


class LumaFuser(BaseFuser):
    """A fuser whose network fuses gray pairs (:meth:`fuse_luma`): a colour visible image is fused
    through its BT.601 luma and gets its chroma back (:mod:`tf_twogan.colour`)."""

    min_size: int
    """Smallest image side the network accepts."""
    tile: int | None
    """Output tile side: ``None`` tiles automatically, ``0`` never (:func:`~tf_twogan.tiling.tile_side`)."""
    widest_layer: int
    """Channels of the network's widest activation, which sets the automatic tile side."""

    @abstractmethod
    def fuse_luma(self, ir: np.ndarray, vis: np.ndarray, progress: bool = False) -> np.ndarray:
        """Fuse two gray images (uint8, or float on 0..255) of the same size; float32 (H, W) on 0..255."""

    @property
    def auto_tile(self) -> int:
        """Tile side used automatically (see :func:`~tf_twogan.tiling.auto_tile_side`)."""
        return auto_tile_side(self.widest_layer)

    def tile_for(self, height: int, width: int) -> int:
        """The tile side used for an image of this size (the whole image if untiled)."""
        return tile_side(self.tile, self.auto_tile, height, width)

    @staticmethod
    def tile_bar(plans: Iterable, height: int, width: int, tile: int, progress: bool) -> Iterable:
        """``plans`` of an image's tiles, with a bar over them when ``progress`` and there is more than one."""
        from .console import tqdm

        count = -(-height // tile) * -(-width // tile)
        return tqdm(plans, total=count, desc="tiles", unit="tile", disable=not progress or count == 1)

    def _split_pair(self, ir: np.ndarray, vis: np.ndarray, ir_label: str, vis_label: str) -> tuple[LumaImage, LumaImage]:
        ir_image, vis_image = split_luma(ir, ir_label), split_luma(vis, vis_label)
        check_pair_shapes(ir_image.luma.shape, vis_image.luma.shape, ir_label, vis_label, self.min_size)
        return ir_image, vis_image

    def check_arrays(self, ir: np.ndarray, vis: np.ndarray, ir_label: str = "ir", vis_label: str = "vis") -> None:
        """Raise :class:`ImageError` naming the images if this pair cannot be fused (pixel type, sizes, too small)."""
        self._split_pair(ir, vis, ir_label, vis_label)

    def fuse_arrays(self, ir: np.ndarray, vis: np.ndarray, *, ir_label: str = "ir", vis_label: str = "vis",
                    as_float: bool = False, progress: bool = False) -> np.ndarray:
        """Fuse one pair of arrays (gray, gray-as-RGB or RGB(A); uint8, uint16 or float 0..255).

        Returns uint8 (H, W), or (H, W, 3) when ``vis`` is in colour (its chroma is put
        back); with ``as_float`` the fused luma as float32 (H, W) on 0..255.
        """
        ir_image, vis_image = self._split_pair(ir, vis, ir_label, vis_label)
        luma = self.fuse_luma(ir_image.luma, vis_image.luma, progress=progress)
        return luma if as_float else merge_luma(luma, vis_image)
