"""Colour for fusion: the BT.601 luma of a colour visible image is fused, its chroma put back.

Full-range BT.601 (JPEG) YCbCr, the FusionGAN-family convention (docs/DESIGN.md
section 5): :func:`split_luma` turns an image into what the network sees (gray luma,
plus Cb/Cr for colour), :func:`merge_luma` turns the fused luma back into a uint8
image of the visible image's kind.  Gray stored as identical channels is treated as
gray; 16-bit images are scaled linearly to 0..255.  No TensorFlow here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .images import BT601_LUMA, ImageError, is_gray_as_rgb, to_uint8

# Full-range BT.601 (JPEG) YCbCr; the luma weights are images.BT601_LUMA (also used by the
# SavedModel's image endpoint, tf_twogan.export).
RGB_TO_CBCR = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)
CR_TO_R, CB_TO_G, CR_TO_G, CB_TO_B = 1.402, -0.344136, -0.714136, 1.772


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
    luma = rgb @ BT601_LUMA.astype(np.float32)
    cb, cr = np.moveaxis(rgb @ RGB_TO_CBCR.T, -1, 0)
    return LumaImage(luma, cb, cr)


def merge_luma(luma: np.ndarray, like: LumaImage) -> np.ndarray:
    """Fused luma (float, 0..255) -> uint8 image: gray, or RGB with ``like``'s chroma put back.

    A gray result is rounded in place: ``luma`` is overwritten.
    """
    if not like.is_colour:
        np.add(luma, np.float32(0.5), out=luma)
        np.floor(luma, out=luma)
        return np.clip(luma, 0, 255, out=luma).astype(np.uint8)
    channels = (luma + CR_TO_R * like.cr, luma + CB_TO_G * like.cb + CR_TO_G * like.cr, luma + CB_TO_B * like.cb)
    return np.stack([to_uint8(channel) for channel in channels], axis=-1)
