"""Video fusion (tf_twogan.video, ``twogan fuse`` with video files) on small real videos.

The videos are 64x48, 5 frames, cut from a real TNO pair (gray) and a real RoadScene
pair (RGB visible) at moving offsets, and encoded by the ffmpeg of imageio-ffmpeg.
Fused frames are checked against ``Fuser.fuse_arrays`` on the same decoded frames.
"""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg  # in the test extra (setup.cfg): a missing one must fail, not skip the module
import numpy as np
import pytest

from helpers import need_dataset
from test_reliability import assert_one_line_error, files_under, run_cli
from tf_twogan import video
from tf_twogan.images import read_image
from tf_twogan.inference import Fuser

FRAMES, HEIGHT, WIDTH = 5, 48, 64
PAIRS = {"gray": ("tno", "1.bmp", "1.bmp"), "colour": ("roadscene", "FLIR_00006.jpg", "FLIR_00006.jpg")}
# libx264 at CRF 17 (4:2:0 chroma) against the frames before encoding, shipped checkpoint:
# measured 44.0 dB on the colour clip (CRF 28 gives 40.9, CRF 51 29.4)
MIN_X264_PSNR = 40.0


def write_video(path: Path, frames: list[np.ndarray], fps: float = 5.0) -> Path:
    """Encode uint8 frames (gray or RGB) with imageio-ffmpeg: FFV1 for .mkv, else H.264 (CRF 17)."""
    colour = frames[0].ndim == 3
    lossless = path.suffix == ".mkv"
    writer = imageio_ffmpeg.write_frames(
        str(path), (frames[0].shape[1], frames[0].shape[0]), fps=fps, macro_block_size=1, quality=None,
        pix_fmt_in="rgb24" if colour else "gray", codec="ffv1" if lossless else "libx264",
        pix_fmt_out=("gbrp" if colour else "gray") if lossless else "yuv420p",
        output_params=[] if lossless else ["-crf", "17"], ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def crops(image: np.ndarray, frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    """A short clip panning over a real image: crops moving 4 rows and 3 columns per frame."""
    return [image[20 + 4 * k: 20 + 4 * k + height, 30 + 3 * k: 30 + 3 * k + width] for k in range(frames)]


def make_pair(folder: Path, kind: str, suffix: str = ".mp4", **crop) -> tuple[Path, Path]:
    dataset, ir_name, vis_name = PAIRS[kind]
    source = need_dataset(dataset)
    ir, vis = read_image(source / "ir" / ir_name), read_image(source / "vis" / vis_name)
    ir = ir[..., 0] if ir.ndim == 3 else ir
    folder.mkdir(parents=True, exist_ok=True)
    return (write_video(folder / f"ir{suffix}", crops(ir, **crop)), write_video(folder / f"vis{suffix}", crops(vis, **crop)))


def decoded(path: Path) -> list[np.ndarray]:
    return list(video.read_video_frames(path))


def expected_frames(fuser: Fuser, ir_path: Path, vis_path: Path) -> list[np.ndarray]:
    """``fuse_arrays`` on each decoded pair, independently of tf_twogan.video's own loop."""
    return [fuser.fuse_arrays(ir, vis) for ir, vis in zip(decoded(ir_path), decoded(vis_path))]


def as_rgb(frame: np.ndarray) -> np.ndarray:
    return np.repeat(frame[..., None], 3, axis=-1) if frame.ndim == 2 else frame


@pytest.fixture(scope="module")
def tiny_fuser(tiny_checkpoint) -> Fuser:
    return Fuser(tiny_checkpoint, precision="float32")


@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_fused_frames_before_encoding_equal_fuse_arrays_on_the_decoded_pair(kind, tiny_fuser, tmp_path):
    ir, vis = make_pair(tmp_path, kind)
    fused = list(video.iter_fused_frames(ir, vis, tiny_fuser))
    expected = expected_frames(tiny_fuser, ir, vis)
    assert len(fused) == len(expected) == FRAMES
    assert fused[0].shape == ((HEIGHT, WIDTH, 3) if kind == "colour" else (HEIGHT, WIDTH))
    for index, (got, want) in enumerate(zip(fused, expected)):
        np.testing.assert_array_equal(got, want, err_msg=f"frame {index}")


@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_cli_ffv1_video_decodes_to_exactly_the_fused_frames(kind, tiny_checkpoint, tiny_fuser, tmp_path, capsys):
    ir, vis = make_pair(tmp_path / "in", kind)
    out = tmp_path / "out" / "fused.mkv"
    capsys.readouterr()
    code = run_cli_ok(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
                       "--precision", "float32", "--codec", "ffv1"], capsys)
    assert code.out.strip() == str(out)
    assert "frame/s" in code.err or "s/frame" in code.err  # the progress bar shows the rate
    info = video.probe_video(out)
    assert (info.frames, info.width, info.height, info.fps) == (FRAMES, WIDTH, HEIGHT, 5.0)
    for index, (got, want) in enumerate(zip(decoded(out), expected_frames(tiny_fuser, ir, vis), strict=True)):
        np.testing.assert_array_equal(got, as_rgb(want), err_msg=f"frame {index}")
    assert files_under(out.parent) == {out}  # no temporary file left beside it


def run_cli_ok(argv: list[str], capsys):
    from tf_twogan.cli import main

    assert main(argv) == 0
    return capsys.readouterr()


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_api_h264_video_matches_the_fused_frames_within_the_codec_loss(suffix, tmp_path):
    # the shipped checkpoint: the tiny random one gives near-flat frames that any codec keeps
    fuser = Fuser(precision="float32")
    ir, vis = make_pair(tmp_path / "in", "colour")
    out = video.fuse_video(ir, vis, tmp_path / f"fused{suffix}", fuser)
    assert out == tmp_path / f"fused{suffix}"
    got, want = decoded(out), expected_frames(fuser, ir, vis)
    assert len(got) == FRAMES and got[0].shape == (HEIGHT, WIDTH, 3)
    error = np.mean([(a.astype(np.float64) - b) ** 2 for a, b in zip(got, want)])
    assert 10 * np.log10(255.0**2 / error) >= MIN_X264_PSNR


def failing_pairs(folder: Path) -> dict[str, tuple[Path, Path, str]]:
    """Name -> (ir, vis, fragment of the one-line error)."""
    ir, _ = make_pair(folder / "good", "gray")
    _, short = make_pair(folder / "short", "gray", frames=FRAMES - 1)
    _, wide = make_pair(folder / "wide", "gray", width=WIDTH + 2)
    text = folder / "notes.mp4"
    text.write_text("not a video\n")
    return {"frame count": (ir, short, f"{FRAMES - 1} frames but {ir} has {FRAMES}"),
            "frame size": (ir, wide, f"frames are {WIDTH + 2}x{HEIGHT} but {ir} has {WIDTH}x{HEIGHT}"),
            "unreadable": (ir, text, "cannot be read as a video")}


@pytest.mark.parametrize("case", ["frame count", "frame size", "unreadable"])
def test_cli_refuses_a_mismatched_or_unreadable_video_with_one_line_and_no_output(case, tiny_checkpoint, tmp_path, capsys):
    ir, vis, fragment = failing_pairs(tmp_path / "in")[case]
    out = tmp_path / "out"
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out / "fused.mp4"),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(vis), fragment)
    assert files_under(out) == set()
