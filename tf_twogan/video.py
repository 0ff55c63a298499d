"""Fusing infrared and visible video streams frame by frame (issue 16).

Frames are paired by index: frame k of the infrared video with frame k of the visible
one.  Both files are probed before any frame is fused, so a difference in frame
count or frame size, or a file that is not a video, is refused up front with one
line naming the file.  Each pair goes through :meth:`Fuser.fuse_arrays`, exactly as a
pair of image files: a colour visible stream gives a colour result (BT.601 luma
fused, chroma kept).  The output is written under a temporary name beside the target
and renamed into place when complete, so an error or an interrupt leaves no partial
video.

Decoding and encoding use the ffmpeg binary shipped inside the ``imageio-ffmpeg``
wheel (README, Dependencies): frames travel as raw bytes through a pipe, so what the
network sees is exactly what ffmpeg decodes, and no system ffmpeg is needed.

Example:
    >>> from tf_twogan.video import fuse_video
    >>> fuse_video("ir.mp4", "vis.mp4", "fused.mp4")
    >>> fuse_video("ir.mp4", "vis.mp4", "fused.mkv", codec="ffv1")      # lossless
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .images import ImageError, atomic_path, check_input_file
from .precision import default_precision

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
# libx264 (H.264, lossy, plays everywhere) or FFV1 (lossless; needs .mkv or .avi).
CODECS = ("libx264", "ffv1")
LOSSLESS_CONTAINERS = {"ffv1": (".mkv", ".avi")}
# libx264's constant rate factor: 17 is "visually lossless" (x264 documentation).
X264_CRF = 17


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds: frame size, frame count and frame rate."""

    path: Path
    width: int
    height: int
    frames: int
    fps: float


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video suffix (:data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _ffmpeg():
    """The ``imageio_ffmpeg`` module, or an error that says how to install it."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImageError("video fusion needs the imageio-ffmpeg package: pip install \"tf_twogan[video]\"") from None
    return imageio_ffmpeg


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame count and frame rate of a video file; :class:`ImageError` naming it if it is unusable."""
    path = check_input_file(path, "a video file")
    ffmpeg = _ffmpeg()
    reader = ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
        frames, _ = ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError, StopIteration, ValueError):  # ffmpeg's own report is many lines
        raise ImageError(f"{path}: cannot be read as a video (damaged, or not a {path.suffix} file)") from None
    finally:
        reader.close()
    width, height = meta["size"]
    if frames < 1 or width < 1 or height < 1:
        raise ImageError(f"{path}: video has no frames")
    return VideoInfo(path, int(width), int(height), int(frames), float(meta.get("fps") or 25.0))


def read_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video's frames in order as uint8 (H, W, 3) RGB arrays."""
    ffmpeg = _ffmpeg()
    reader = ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(reader)["size"]
        for frame in reader:
            yield np.frombuffer(frame, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def check_video_pair(ir_path: str | os.PathLike, vis_path: str | os.PathLike) -> tuple[VideoInfo, VideoInfo]:
    """Probe both videos; refuse a difference in frame size or count with one line naming the visible file."""
    ir, vis = probe_video(ir_path), probe_video(vis_path)
    if (ir.width, ir.height) != (vis.width, vis.height):
        raise ImageError(f"{vis.path}: frames are {vis.width}x{vis.height} but {ir.path} has {ir.width}x{ir.height} "
                         "(width x height); frames are fused pixel by pixel")
    if ir.frames != vis.frames:
        raise ImageError(f"{vis.path}: {vis.frames} frames but {ir.path} has {ir.frames}; frames are paired by index")
    return ir, vis


def iter_fused_frames(ir_path: str | os.PathLike, vis_path: str | os.PathLike, fuser) -> Iterator[np.ndarray]:
    """Fused frames (before encoding) of two checked videos: ``fuser.fuse_arrays`` on each decoded pair."""
    for index, (ir, vis) in enumerate(zip(read_video_frames(ir_path), read_video_frames(vis_path))):
        yield fuser.fuse_arrays(ir, vis, ir_label=f"{ir_path} frame {index}", vis_label=f"{vis_path} frame {index}")


def _encoder_options(codec: str, colour: bool, width: int, height: int) -> dict:
    """``imageio_ffmpeg.write_frames`` arguments for a codec and frame layout."""
    pix_fmt_in = "rgb24" if colour else "gray"
    if codec == "ffv1":
        return dict(codec="ffv1", pix_fmt_in=pix_fmt_in, pix_fmt_out="gbrp" if colour else "gray", quality=None,
                    output_params=["-level", "3"])
    # 4:2:0 chroma needs even sides; odd ones keep full-resolution chroma
    pix_fmt_out = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return dict(codec="libx264", pix_fmt_in=pix_fmt_in, pix_fmt_out=pix_fmt_out, quality=None,
                output_params=["-crf", str(X264_CRF)])


def fuse_video(ir_path: str | os.PathLike, vis_path: str | os.PathLike, out_path: str | os.PathLike, fuser=None, *,
               checkpoint: str | os.PathLike | None = None, precision: str | None = None, tile: int | None = None,
               codec: str = "libx264",
               progress: bool = False) -> Path:
    """Fuse two videos frame by frame into ``out_path`` (written atomically); returns it.

    Args:
        ir_path, vis_path: videos of the same frame size and frame count.
        out_path: ``.mp4``, ``.avi``, ``.mkv`` or ``.mov``; at the infrared video's frame rate.
        fuser: a :class:`~tf_twogan.inference.Fuser` to use (else one is loaded from
            ``checkpoint`` at ``precision``, default :func:`~tf_twogan.precision.default_precision`, with ``tile``).
        codec: ``libx264`` (lossy, CRF 17) or ``ffv1`` (lossless, ``.mkv``/``.avi``).
        progress: show a bar with frames per second.
    """
    ir_path, vis_path, out_path = Path(ir_path), Path(vis_path), Path(out_path)
    if codec not in CODECS:
        raise ImageError(f"{out_path}: codec must be one of {', '.join(CODECS)}, got {codec!r}")
    if not is_video(out_path):
        raise ImageError(f"{out_path}: output suffix must be one of {', '.join(VIDEO_SUFFIXES)} for video inputs")
    if codec in LOSSLESS_CONTAINERS and out_path.suffix.lower() not in LOSSLESS_CONTAINERS[codec]:
        raise ImageError(f"{out_path}: {codec} needs a {' or '.join(LOSSLESS_CONTAINERS[codec])} file")
    for source in (ir_path, vis_path):
        if out_path.exists() and out_path.resolve() == source.resolve():
            raise ImageError(f"{out_path}: is an input video; choose another output path")
    ir, _ = check_video_pair(ir_path, vis_path)
    if fuser is None:
        from .inference import Fuser

        fuser = Fuser(checkpoint, precision=precision or default_precision(), tile=tile)
    from .console import tqdm

    temporary, target = atomic_path(out_path)
    writer = None
    try:
        for frame in tqdm(iter_fused_frames(ir_path, vis_path, fuser), total=ir.frames, desc="fuse", unit="frame",
                          disable=not progress):
            if writer is None:
                writer = _ffmpeg().write_frames(str(temporary), (ir.width, ir.height), fps=Fraction(ir.fps).limit_denominator(),
                                                macro_block_size=1, ffmpeg_log_level="error",
                                                **_encoder_options(codec, frame.ndim == 3, ir.width, ir.height))
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        writer = None
        os.replace(temporary, target)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    return target
