"""Fusing infrared and visible video streams frame by frame (issue 16).

Frames are paired by index: frame k of the infrared video with frame k of the visible
one.  Both files are probed before any frame is fused, so a difference in frame
count or frame size, a variable frame rate, or a file that is not a video, is refused
up front with one line naming the file.  Each pair goes through :meth:`Fuser.fuse_arrays`, exactly as a
pair of image files: a colour visible stream gives a colour result (BT.601 luma
fused, chroma kept); the clip is colour if any visible frame is, so black or gray frames
do not change its layout.  The output is written under a temporary name beside the
target and renamed into place only when ffmpeg exits successfully, so an error, an
interrupt or a full disk leaves no partial video and any older output untouched.

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
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .atomic import atomic_write
from .errors import OutputError
from .images import ImageError, check_input_file, is_gray_as_rgb
from .locking import remove_stray_temporaries
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
    """Size, frame count and frame rate of a video file; :class:`ImageError` naming it if it is unusable.

    A variable frame rate is refused: the decoder would repeat or drop frames to make the
    rate constant, and frames paired by index would no longer be simultaneous.
    """
    path = check_input_file(path, "a video file")
    ffmpeg = _ffmpeg()
    reader = ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
        timestamps = _frame_timestamps(path)
    except (RuntimeError, OSError, StopIteration, ValueError):  # ffmpeg's own report is many lines
        raise ImageError(f"{path}: cannot be read as a video (damaged, or not a {path.suffix} file)") from None
    finally:
        reader.close()
    width, height = meta["size"]
    if len(timestamps) < 1 or width < 1 or height < 1:
        raise ImageError(f"{path}: video has no frames")
    steps = np.unique(np.diff(timestamps))
    if len(steps) > 1:
        raise ImageError(f"{path}: variable frame rate (frame intervals from {steps[0]} to {steps[-1]} time units); "
                         "frames are paired by index: re-encode at a constant rate (ffmpeg -fps_mode cfr)")
    return VideoInfo(path, int(width), int(height), len(timestamps), float(meta.get("fps") or 25.0))


def _frame_timestamps(path: Path) -> np.ndarray:
    """Presentation times of the first video stream's frames, sorted, in the stream's time units.

    Read from the packets without decoding (ffmpeg's ``framemd5`` muxer lists each
    packet's dts, pts, duration, size and hash).
    """
    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                           "-f", "framemd5", "-"], capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(done.stderr)
    rows = [line.split(",") for line in done.stdout.splitlines() if line and not line.startswith("#")]
    return np.sort(np.array([int(row[2]) for row in rows], dtype=np.int64))


def read_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video's frames in order as uint8 (H, W, 3) RGB arrays, each frame once (no rate conversion)."""
    ffmpeg = _ffmpeg()
    reader = ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"])
    try:
        width, height = next(reader)["size"]
        for frame in reader:
            yield np.frombuffer(frame, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def has_colour(path: str | os.PathLike) -> bool:
    """Whether any frame of a video has colour (channels that differ), as :func:`~tf_twogan.colour.split_luma` decides."""
    return any(not is_gray_as_rgb(frame) for frame in read_video_frames(path))


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
    pairs = zip(read_video_frames(ir_path), read_video_frames(vis_path), strict=True)
    for index, (ir, vis) in enumerate(pairs):
        yield fuser.fuse_arrays(ir, vis, ir_label=f"{ir_path} frame {index}", vis_label=f"{vis_path} frame {index}")


def _encoder_command(path: Path, codec: str, colour: bool, width: int, height: int, fps: float) -> list[str]:
    """The ffmpeg command line that encodes raw frames from its standard input into ``path``."""
    pix_fmt_in = "rgb24" if colour else "gray"
    if codec == "ffv1":
        output = ["-c:v", "ffv1", "-pix_fmt", "gbrp" if colour else "gray", "-level", "3"]
    else:
        # 4:2:0 chroma needs even sides; odd ones keep full-resolution chroma
        pix_fmt_out = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        output = ["-c:v", "libx264", "-pix_fmt", pix_fmt_out, "-crf", str(X264_CRF)]
    return [_ffmpeg().get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt_in,
            "-s", f"{width}x{height}", "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an", *output, str(path)]


class _Encoder:
    """One ffmpeg process encoding frames of a fixed layout into ``path``; :meth:`finish` checks that it succeeded.

    The layout (gray or RGB) is fixed for the whole clip; errors name ``target``, the
    file the caller renames ``path`` onto.

    ``imageio_ffmpeg.write_frames`` does not report ffmpeg's exit status, so a video that
    ffmpeg could not finish (disk full, file-size limit at the trailer) looked written.
    """

    def __init__(self, path: Path, target: Path, codec: str, colour: bool, size: tuple[int, int], fps: float):
        self.path, self.target, self.colour = path, target, colour
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(_encoder_command(path, codec, colour, *size, fps),
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def send(self, frame: np.ndarray) -> None:
        """Write one fused frame (gray frames of a colour clip as three equal channels)."""
        if self.colour and frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        try:
            self._process.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            self.finish()
            raise  # ffmpeg exited 0 before reading every frame: a bug, not the user's

    def finish(self) -> None:
        """Close the input, wait for ffmpeg; an :class:`OutputError` naming ``target`` if it failed."""
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        status = self._process.wait()
        self._log.seek(0)
        report = " ".join(self._log.read().decode(errors="replace").replace(str(self.path), self.target.name).split())
        self._log.close()
        if status != 0:
            cause = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
            raise OutputError(f"{self.target}: ffmpeg could not write the video ({cause}{': ' + report if report else ''}); "
                              "nothing written under this name")

    def abort(self) -> None:
        """Stop ffmpeg after an error elsewhere."""
        self._process.kill()
        self._process.wait()
        self._log.close()


def fuse_video(ir_path: str | os.PathLike, vis_path: str | os.PathLike, out_path: str | os.PathLike, fuser=None, *,
               checkpoint: str | os.PathLike | None = None, precision: str | None = None, tile: int | None = None,
               codec: str = "libx264",
               progress: bool = False) -> Path:
    """Fuse two videos frame by frame into ``out_path`` (written atomically); returns it.

    Args:
        ir_path, vis_path: videos of the same frame size and frame count.
        out_path: ``.mp4``, ``.avi``, ``.mkv`` or ``.mov``; at the infrared video's frame rate.
        fuser: a :class:`~tf_twogan.inference.Fuser` or :class:`~tf_twogan.runtime.RuntimeFuser`
            (an exported model, no TensorFlow) to use (else a ``Fuser`` is loaded from
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

    remove_stray_temporaries(out_path.parent, out_path)  # a partial video of a killed earlier run
    colour = has_colour(vis_path)
    with atomic_write(out_path) as temporary:
        encoder = _Encoder(temporary, out_path, codec, colour, (ir.width, ir.height), ir.fps)
        try:
            for frame in tqdm(iter_fused_frames(ir_path, vis_path, fuser), total=ir.frames, desc="fuse", unit="frame",
                              disable=not progress):
                encoder.send(frame)
        except BaseException:
            encoder.abort()
            raise
        encoder.finish()
    return out_path
