"""Reading, validating, pairing and atomically writing image files.

No TensorFlow here: `prepare`, `evaluate` and the metrics start fast.  Every error
is an :class:`ImageError` whose message names the file and the problem.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from .atomic import atomic_path, atomic_write  # atomic_path: kept importable from here
from .errors import OutputError, TwoGanError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# ITU-R BT.601 luma weights, the convention of FusionGAN-family code and of
# MATLAB's rgb2gray (docs/DESIGN.md sections 5 and 8).
BT601_LUMA = np.array([0.299, 0.587, 0.114])


# ``evaluate`` and ``prepare`` hold several float copies of each image (about 220
# bytes per pixel in evaluate): refuse larger images rather than exhaust memory.
MAX_PIXELS = 50_000_000


class ImageError(TwoGanError, ValueError):
    """An image file is missing, unreadable or unusable; the message names it."""


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file: (H, W) or (H, W, C) with C in 1, 3, 4, as it is meant to be seen.

    * EXIF orientation is applied (a phone's portrait JPEG comes upright);
    * CMYK (JPEG, TIFF) is converted to RGB by Pillow;
    * float images: values in 0..1 are taken as 0..1 and scaled to 0..255, values
      in 0..255 as 0..255 (so a float image whose maximum is at most 1 is always read
      as 0..1); values below 0 or above 255 are refused.

    Rejects missing, empty, undecodable and non-finite files, images of an
    unsupported shape or dtype and, with ``max_pixels``, images of more pixels
    (checked from the header, before decoding), with an :class:`ImageError` naming the file.
    """
    import imageio.v3 as iio

    path = check_input_file(path, "an image file")
    size = image_size(path, max_pixels)
    if max_pixels is not None and size is not None and size[0] * size[1] > max_pixels:
        raise ImageError(f"{path}: image of {size[0]}x{size[1]} pixels is larger than the {max_pixels // 1_000_000} "
                         "megapixels this command holds in memory; crop or downscale it")
    try:
        image = _read_with_pillow_fixes(path)
        if image is None:
            image = np.asarray(iio.imread(path))
    except Exception as error:  # imageio raises many types for corrupt files
        # imageio's own message may advise installing a plugin (pip install imageio[pyav]): not the user's problem
        raise ImageError(f"{path}: cannot be read as an image (damaged, or not a {path.suffix or 'known'} image file)") from None
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ImageError(f"{path}: unsupported image shape {image.shape} (expected gray, RGB or RGBA)")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"{path}: image is empty (shape {image.shape})")
    if image.dtype not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"{path}: unsupported pixel type {image.dtype} (expected uint8, uint16 or float)")
    if np.issubdtype(image.dtype, np.floating):
        image = _float_to_255(image, path)
    return image


def check_input_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path if it is a non-empty file; else an :class:`ImageError` saying what it is instead.

    ``expected`` completes "is a folder, expected ..." (e.g. "an image file").
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected {expected}")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    return path


def _float_to_255(image: np.ndarray, path: Path) -> np.ndarray:
    """A float image on the 0..255 scale: 0..1 is scaled by 255, 0..255 kept, anything else refused."""
    if not np.all(np.isfinite(image)):
        raise ImageError(f"{path}: contains NaN or infinite pixel values")
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 255:
        raise ImageError(f"{path}: float pixel values {low:g}..{high:g} are outside 0..1 and 0..255")
    return image * image.dtype.type(255) if high <= 1 else image


def image_size(path: str | os.PathLike, max_pixels: int | None = None) -> tuple[int, int] | None:
    """(width, height) from the file's header, nothing decoded; None where Pillow cannot open the file.

    Refuses, with an :class:`ImageError`, a file of several pages or frames (a
    multi-page TIFF was decoded whole before it was refused) and an image above
    Pillow's decompression-bomb limit (it was reported as damaged), naming
    ``max_pixels`` if given, else that limit.
    """
    from PIL import Image

    try:
        with Image.open(path) as opened:
            width, height = opened.size
            frames = getattr(opened, "n_frames", 1)
    except Image.DecompressionBombError as error:
        limit = max_pixels or 2 * Image.MAX_IMAGE_PIXELS  # Pillow refuses twice its warning threshold
        stated = re.search(r"\((\d+) pixels\)", str(error))
        size = f"of {int(stated.group(1)) / 1e6:.0f} megapixels " if stated else ""
        raise ImageError(f"{path}: image {size}is larger than the {limit // 1_000_000} megapixels "
                         f"{'this command holds in memory' if max_pixels else 'the image reader accepts'}; "
                         "crop or downscale it") from None
    except Exception:  # not readable by Pillow: the decoder names the problem
        return None
    if frames > 1:
        raise ImageError(f"{path}: holds {frames} images (pages or frames); expected a single image")
    return width, height


def _read_with_pillow_fixes(path: Path) -> np.ndarray | None:
    """The decoded image if it needs EXIF orientation or a CMYK conversion, else None (imageio reads it as is)."""
    from PIL import Image, ImageOps

    try:
        opened = Image.open(path)
    except Exception:
        return None
    with opened:
        orientation = opened.getexif().get(0x0112, 1)
        if opened.mode != "CMYK" and orientation in (1, None):
            return None
        upright = ImageOps.exif_transpose(opened)
        mode = _PILLOW_CONVERSIONS.get(upright.mode)
        return np.asarray(upright.convert(mode) if mode else upright)


# Pillow modes that are not an array of gray or RGB(A) values as they stand.
_PILLOW_CONVERSIONS = {"CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "P": "RGBA", "PA": "RGBA", "1": "L", "LA": "L"}


def is_gray_as_rgb(image: np.ndarray) -> bool:
    """True for a 3- or 4-channel image whose colour channels are identical."""
    return image.ndim == 3 and bool(np.array_equal(image[..., 0], image[..., 1])) and bool(
        np.array_equal(image[..., 0], image[..., 2])
    )


def to_unit_scale(image: np.ndarray) -> np.ndarray:
    """Map pixel values to float64 on the 0..255 scale (16-bit linearly, floats as is)."""
    if image.dtype == np.uint16:
        return image.astype(np.float64) * (255.0 / 65535.0)
    return image.astype(np.float64)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Gray float64 image on the 0..255 scale.

    Gray stored as identical channels keeps its channel exactly; colour becomes
    the BT.601 luma 0.299 R + 0.587 G + 0.114 B (alpha ignored).
    """
    scaled = to_unit_scale(image)
    if image.ndim == 2:
        return scaled
    if is_gray_as_rgb(image):
        return scaled[..., 0]
    return scaled[..., :3] @ BT601_LUMA


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a 0..255 float image half up and clip it to uint8."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.uint8)


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Gray uint8 image: :func:`to_gray`, rounded half up and clipped to 0..255.

    uint8 gray input is returned unchanged (no float round trip).
    """
    if image.dtype == np.uint8 and (image.ndim == 2 or is_gray_as_rgb(image)):
        return image if image.ndim == 2 else image[..., 0]
    return to_uint8(to_gray(image))


def read_gray_uint8(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a 2-D uint8 gray array (see :func:`to_gray_uint8` and :func:`read_image`)."""
    return to_gray_uint8(read_image(path, max_pixels))


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Map each image's stem to its path in ``folder`` (non-recursive, sorted; this package's temporaries left out).

    Raises :class:`ImageError` for a missing or empty folder, and for two files
    with the same stem (``a.png`` and ``a.jpg``), which would pair ambiguously.
    """
    from .locking import temporary_owner

    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and temporary_owner(path) is None:
            if path.stem in found:
                raise ImageError(f"{folder}: two images share the name {path.stem!r} ({found[path.stem].name}, {path.name})")
            found[path.stem] = path
    if not found:
        raise ImageError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return found


def natural_key(name: str) -> tuple:
    """Sort key that orders '2' before '10'."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def pair_folders(first: str | os.PathLike, second: str | os.PathLike, names: Iterable[str] | None = None,
                 skip_unmatched: bool = False) -> list[tuple[str, Path, Path]]:
    """Pair the images of two folders by file stem: ``[(name, first_path, second_path)]``.

    The one place where two folders pair up (fuse, prepare, evaluate, baselines).
    With ``names`` (e.g. :func:`split_names`) only those pairs, in that order, and each
    must be in both folders.  Without it every stem, in natural order; a stem found
    in one folder only is an error listing them all, unless ``skip_unmatched``, which
    keeps the stems found in both.  No pair at all is an error too.
    """
    first_images, second_images = list_images(first), list_images(second)
    if names is not None:
        wanted = list(dict.fromkeys(str(name) for name in names))
        folders = ((first, first_images), (second, second_images))
        missing = [f"{name} (not in {', '.join(str(folder) for folder, images in folders if name not in images)})"
                   for name in wanted if name not in first_images or name not in second_images]
        if missing:
            raise ImageError(f"{first}, {second}: pairs not found in both folders: {', '.join(missing)}")
        if not wanted:
            raise ImageError(f"{first}, {second}: the list of pairs to use is empty")
    else:
        only_first = sorted(set(first_images) - set(second_images), key=natural_key)
        only_second = sorted(set(second_images) - set(first_images), key=natural_key)
        if (only_first or only_second) and not skip_unmatched:
            parts = [f"only in {folder}: {', '.join(found)}" for folder, found in ((first, only_first), (second, only_second)) if found]
            raise ImageError("images do not pair up by name (" + "; ".join(parts) + "); skip_unmatched "
                             "(twogan fuse --skip-unmatched) uses the pairs that match")
        wanted = sorted(set(first_images) & set(second_images), key=natural_key)
        if not wanted:
            raise ImageError(f"{first} and {second}: no image names in common")
    return [(name, first_images[name], second_images[name]) for name in wanted]


def split_names(split: str | os.PathLike, subset: str) -> list[str]:
    """Pair names of ``subset`` in a split (a shipped one by name, e.g. ``tno``, or a JSON file
    ``{subset: [names]}``; :func:`tf_twogan.datasets.split_file`), in natural order."""
    import json

    from .datasets import shipped_splits, split_file

    split = split_file(split)
    try:
        subsets = json.loads(Path(split).read_text())
    except (OSError, ValueError) as error:
        shipped = "" if Path(split).exists() else f"; shipped splits: {', '.join(shipped_splits())}"
        raise ImageError(f"{split}: cannot read split file ({type(error).__name__}){shipped}") from None
    if not isinstance(subsets, dict) or not isinstance(subsets.get(subset), list):
        found = ", ".join(k for k, v in subsets.items() if isinstance(v, list)) if isinstance(subsets, dict) else ""
        raise ImageError(f"{split}: has no list of pairs named {subset!r} (subsets: {found or 'none'})")
    return sorted((str(name) for name in subsets[subset]), key=natural_key)


def resize_box(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (gray or RGB, any pixel type) resized to ``height`` x ``width`` with a box filter, colour and type kept.

    Each output pixel is the area-weighted mean of the input pixels it covers (Pillow's
    ``BOX``), the right filter for shrinking.  It registers RoadScene's visible frames,
    3.118x by 2.809x their infrared frames, onto the infrared grid
    (``twogan fuse --resize-vis``, results/reproduce.py).
    """
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BOX))
    # Pillow resizes other types only as single float channels (mode "F"): one channel at a time
    channels = image[..., None] if image.ndim == 2 else image
    resized = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., c], dtype=np.float32))
                                   .resize((width, height), Image.BOX)) for c in range(channels.shape[-1])], axis=-1)
    resized = resized[..., 0] if image.ndim == 2 else resized
    if np.issubdtype(image.dtype, np.integer):
        limits = np.iinfo(image.dtype)
        return np.clip(np.round(resized), limits.min, limits.max).astype(image.dtype)
    return resized.astype(image.dtype)


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` (uint8 or uint16) atomically; the format follows the suffix."""
    import imageio.v3 as iio

    encoded = iio.imwrite("<bytes>", image, extension=Path(path).suffix.lower())  # a full disk then fails in our write
    with atomic_write(path) as temporary:
        temporary.write_bytes(encoded)
    return Path(path)


def require_free_space(output: str | os.PathLike, needed: int, what: str = "") -> None:
    """Raise :class:`OutputError` naming ``output`` if its file system has less than ``needed`` bytes free.

    For writers that a full disk would crash rather than fail cleanly (libhdf5).
    ``what`` says what the estimate covers, for the message.
    """
    output = Path(output)
    existing = next((parent for parent in (output, *output.parents) if parent.exists()), Path("."))
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise OutputError(f"{output}: not enough free disk space ({free / 2**20:.1f} MiB free, about "
                          f"{needed / 2**20:.1f} MiB needed{' for ' + what if what else ''}); nothing was written")


def refuse_output_over_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                              flag: str = "--out") -> None:
    """Raise :class:`ImageError` if ``out`` is one of the input files or folders, or lies inside an input folder."""
    out_resolved = Path(out).resolve()
    for source in inputs:
        if source is None:
            continue
        source_resolved = Path(source).resolve()
        if out_resolved == source_resolved or (source_resolved.is_dir() and source_resolved in out_resolved.parents):
            raise ImageError(f"{out}: {flag} is, or is inside, the input {source}; choose an output outside the inputs")
