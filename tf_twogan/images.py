"""Reading, validating, pairing and atomically writing image files.

No TensorFlow here: `prepare`, `evaluate` and the metrics start fast.  Every error
is an :class:`ImageError` whose message names the file and the problem.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# ITU-R BT.601 luma weights, the convention of FusionGAN-family code and of
# MATLAB's rgb2gray (SPEC sections 5 and 8).
BT601_LUMA = np.array([0.299, 0.587, 0.114])


class ImageError(ValueError):
    """An image file is missing, unreadable or unusable; the message names it."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as stored: (H, W) or (H, W, C) with C in 1, 3, 4.

    Rejects missing, empty, undecodable and non-finite files and images of an
    unsupported shape or dtype with an :class:`ImageError` naming the file.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    try:
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
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        raise ImageError(f"{path}: contains NaN or infinite pixel values")
    return image


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


def read_gray_uint8(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a 2-D uint8 gray array (see :func:`to_gray_uint8`)."""
    return to_gray_uint8(read_image(path))


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Map each image's stem to its path in ``folder`` (non-recursive, sorted).

    Raises :class:`ImageError` for a missing or empty folder, and for two files
    with the same stem (``a.png`` and ``a.jpg``), which would pair ambiguously.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise ImageError(f"{folder}: two images share the name {path.stem!r} ({found[path.stem].name}, {path.name})")
            found[path.stem] = path
    if not found:
        raise ImageError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return found


def natural_key(name: str) -> tuple:
    """Sort key that orders '2' before '10'."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def pair_folders(
    first: str | os.PathLike, second: str | os.PathLike, names: Iterable[str] | None = None
) -> list[tuple[str, Path, Path]]:
    """Pair the images of two folders by file stem: ``[(name, first_path, second_path)]``.

    With ``names`` only those pairs are returned, and each must exist in both.
    Without it every stem must be in both folders; otherwise the error lists the
    names that do not pair up.
    """
    first_images, second_images = list_images(first), list_images(second)
    if names is not None:
        wanted = [str(name) for name in names]
        missing = [f"{name} (in {folder})" for name in wanted for folder, images in
                   ((first, first_images), (second, second_images)) if name not in images]
        if missing:
            raise ImageError("requested pairs not found: " + ", ".join(missing))
    else:
        only_first = sorted(set(first_images) - set(second_images), key=natural_key)
        only_second = sorted(set(second_images) - set(first_images), key=natural_key)
        if only_first or only_second:
            raise ImageError(
                "images do not pair up by name: "
                + "; ".join(part for part in (
                    f"only in {first}: {', '.join(only_first)}" if only_first else "",
                    f"only in {second}: {', '.join(only_second)}" if only_second else "",
                ) if part)
            )
        wanted = sorted(first_images, key=natural_key)
    return [(name, first_images[name], second_images[name]) for name in wanted]


def split_names(split: str | os.PathLike, subset: str) -> list[str]:
    """Pair names of ``subset`` in a split file (JSON ``{subset: [names]}``, like tno/split.json), in natural order."""
    import json

    try:
        subsets = json.loads(Path(split).read_text())
    except (OSError, ValueError) as error:
        raise ImageError(f"{split}: cannot read split file ({type(error).__name__})") from None
    if not isinstance(subsets, dict) or not isinstance(subsets.get(subset), list):
        found = ", ".join(k for k, v in subsets.items() if isinstance(v, list)) if isinstance(subsets, dict) else ""
        raise ImageError(f"{split}: has no list of pairs named {subset!r} (subsets: {found or 'none'})")
    return sorted((str(name) for name in subsets[subset]), key=natural_key)


def resize_box(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (uint8 gray or RGB) resized to ``height`` x ``width`` with a box filter, colour kept.

    Each output pixel is the area-weighted mean of the input pixels it covers (Pillow's
    ``BOX``), the right filter for shrinking.  It registers RoadScene's visible frames,
    3.118x by 2.809x their infrared frames, onto the infrared grid
    (``twogan fuse --resize-vis``, results/reproduce.py).
    """
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BOX))


def atomic_path(target: str | os.PathLike) -> tuple[Path, Path]:
    """A temporary path beside ``target`` (same folder, same suffix) and the target.

    Write to the first, then ``os.replace`` it onto the second: readers never see a
    half-written file, and a crash leaves at most a stray ``.tmp`` file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
    return Path(temporary), target


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` (uint8 or uint16) atomically; the format follows the suffix."""
    import imageio.v3 as iio

    temporary, target = atomic_path(path)
    try:
        iio.imwrite(temporary, image, extension=target.suffix.lower())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
