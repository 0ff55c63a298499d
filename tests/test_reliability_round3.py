"""Reliability, round three (issue 21): video output, damaged checkpoints, stores, workers, the review's defects.

Real files, real ffmpeg, real TensorFlow.  Helpers for the one-line contract come from
``test_reliability``; small videos from ``test_video``.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_reliability import assert_one_line_error, files_under, run_cli

# ----------------------------------------------------------------------------- data loss: video output


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_video_that_ffmpeg_cannot_finish_leaves_the_old_output_untouched(tiny_checkpoint, tmp_path):
    from test_video import make_pair

    ir, vis = make_pair(tmp_path / "in", "colour", suffix=".mkv")
    out = tmp_path / "out" / "fused.mkv"
    out.parent.mkdir()
    old = vis.read_bytes()  # a good video, larger than the limit below
    out.write_bytes(old)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    # ffmpeg inherits the file-size limit (and Python's ignored SIGXFSZ): its writes fail with EFBIG
    done = subprocess.run([sys.executable, "-m", "tf_twogan.cli", "fuse", "--ir", str(ir), "--vis", str(vis),
                           "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--codec", "ffv1"],
                          env=env, capture_output=True, text=True, preexec_fn=_limit_file_size(4096), timeout=300)
    assert done.returncode == 2, done
    last = done.stderr.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith(f"twogan fuse: error: {out}: ffmpeg could not write") and "Traceback" not in done.stderr, done.stderr
    assert ".twogan-tmp" not in done.stderr
    assert out.read_bytes() == old
    assert files_under(out.parent) == {out}


def test_a_colour_clip_with_black_frames_stays_a_colour_clip_of_all_its_frames(tiny_checkpoint, tmp_path):
    from test_video import FRAMES, as_rgb, crops, decoded, expected_frames, write_video
    from tf_twogan import video
    from tf_twogan.images import read_image
    from tf_twogan.inference import Fuser
    from helpers import need_dataset

    roadscene = need_dataset("roadscene")
    ir_image = read_image(roadscene / "ir" / "FLIR_00006.jpg")
    ir_frames = crops(ir_image[..., 0] if ir_image.ndim == 3 else ir_image)
    vis_frames = crops(read_image(roadscene / "vis" / "FLIR_00006.jpg"))
    vis_frames[0] = np.zeros_like(vis_frames[0])  # black first frame: fused as gray
    vis_frames[2] = np.zeros_like(vis_frames[2])  # and one in the middle
    ir = write_video(tmp_path / "ir.mkv", ir_frames)
    vis = write_video(tmp_path / "vis.mkv", vis_frames)
    fuser = Fuser(tiny_checkpoint, precision="float32")
    out = video.fuse_video(ir, vis, tmp_path / "fused.mkv", fuser, codec="ffv1")
    got, want = decoded(out), expected_frames(fuser, ir, vis)
    assert len(got) == FRAMES
    assert want[1].ndim == 3  # the clip is colour
    for index, (frame, expected) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(frame, as_rgb(expected), err_msg=f"frame {index}")


def _ffmpeg_clip(path: Path, setpts: str) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=5:duration=2", "-vf", f"format=gray,setpts='{setpts}'",
                    "-fps_mode", "passthrough", "-c:v", "ffv1", str(path)], check=True)
    return path


def test_a_variable_frame_rate_video_is_refused_naming_it(tiny_checkpoint, tmp_path, capsys):
    ir = _ffmpeg_clip(tmp_path / "ir.mkv", "N/(5*TB)")  # 10 frames, 5 per second
    vis = _ffmpeg_clip(tmp_path / "vis.mkv", r"if(lt(N\,3)\,N\,N+4)/(5*TB)")  # 10 frames with a 0.8 s gap
    out = tmp_path / "out"
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out / "fused.mkv"),
                         "--checkpoint", str(tiny_checkpoint), "--codec", "ffv1"], capsys)
    assert_one_line_error(code, err, "fuse", str(vis), "variable frame rate")
    assert files_under(out) == set()


# ----------------------------------------------------------------------------- 4. damaged FusionGAN checkpoint

def _small_original_checkpoint(folder: Path) -> str:
    """An original-layout FusionGAN generator checkpoint (tf.compat.v1 Saver) with widths 4."""
    from test_fusiongan import write_original_checkpoint

    rng = np.random.default_rng(0)
    values, c_in = {}, 2
    for k, (size, c_out) in enumerate([(5, 4), (5, 4), (3, 4), (3, 4), (1, 1)], start=1):
        scope = f"fusion_model/layer{k}"
        values.update({f"{scope}/w{k}": rng.normal(0, 0.1, (size, size, c_in, c_out)), f"{scope}/b{k}": np.zeros(c_out),
                       f"{scope}/weights_SN/u": rng.normal(0, 1, (1, c_out))})
        if k < 5:
            values.update({f"{scope}/BatchNorm/{name}": np.full(c_out, value) for name, value in
                           [("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0), ("moving_variance", 1.0)]})
        c_in = c_out
    return write_original_checkpoint(folder, {name: value.astype(np.float32) for name, value in values.items()})


def _damage(data: Path, how: str) -> None:
    if how == "missing":
        data.unlink()
    elif how == "truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    else:
        raw = bytearray(data.read_bytes())
        for index in range(40, len(raw), 97):
            raw[index] ^= 0xFF
        data.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["missing", "truncated", "flipped"])
def test_a_damaged_original_fusiongan_checkpoint_is_one_line_naming_it(how, tmp_path, capsys):
    from tf_twogan.images import write_image

    prefix = _small_original_checkpoint(tmp_path / "CGAN_120")
    (data,) = Path(prefix).parent.glob("CGAN.model-3.data-*")
    _damage(data, how)
    write_image(tmp_path / "ir.png", np.full((40, 40), 90, np.uint8))
    write_image(tmp_path / "vis.png", np.full((40, 40), 120, np.uint8))
    code, err = run_cli(["fuse", "--fusiongan-checkpoint", prefix, "--ir", str(tmp_path / "ir.png"),
                         "--vis", str(tmp_path / "vis.png"), "--out", str(tmp_path / "out" / "f.png")], capsys)
    assert_one_line_error(code, err, "fuse", prefix, "cannot read checkpoint")
    assert files_under(tmp_path / "out") == set()


# ----------------------------------------------------------------------------- 5. resume with another store

@pytest.fixture(scope="module")
def other_store(tmp_path_factory, mini_split) -> Path:
    """The same two TNO pairs as ``mini_store`` at another stride: another store of the same patch size."""
    from helpers import need_dataset
    from tf_twogan.store import prepare_store

    tno = need_dataset("tno")
    out = tmp_path_factory.mktemp("other_store") / "other.h5"
    return prepare_store(tno / "ir", tno / "vis", out, split=mini_split, subset="train", stride=64, progress=False)


def test_resuming_a_run_with_another_store_is_refused_naming_both(tiny_run, mini_store, other_store, tmp_path, capsys):
    import shutil

    from helpers import TINY_CHAIN

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("g3.keras", "d3.keras"):  # GAN 3 still to train: a resume
        (run / name).unlink()
    config = TINY_CHAIN.to_json(tmp_path / "config.json")
    before = sorted(path.name for path in run.iterdir())
    code, err = run_cli(["train", "--store", str(other_store), "--out", str(run), "--config", str(config), "--quiet"], capsys)
    # the store the shared run was trained on (another xdist worker's copy of mini_store, perhaps)
    recorded = json.loads((run / "store.json").read_text())["path"]
    assert Path(recorded).name == mini_store.name
    assert_one_line_error(code, err, "train", str(other_store), recorded, "another store")
    assert sorted(path.name for path in run.iterdir()) == before


def test_a_run_that_adopted_its_first_layer_records_the_store_it_trains_gan3_from(tiny_run, other_store, tmp_path):
    from helpers import TINY_CHAIN
    from tf_twogan.run_folder import RunFolder, adopt_first_layer, check_store
    from tf_twogan.store import StoreError

    run = RunFolder(tmp_path / "run")
    run.root.mkdir()
    check_store(run, other_store)  # recorded when the run starts, before the first layer is copied
    adopt_first_layer(run, tiny_run, TINY_CHAIN)  # G1/G2 came from mini_store: not this run's store
    check_store(run, other_store)  # the resume with the same store is accepted
    with pytest.raises(StoreError, match="another store"):
        check_store(run, tiny_run / "second_layer_store.h5")


# ----------------------------------------------------------------------------- 6. --strategy multiworker without a cluster

@pytest.mark.parametrize("tf_config, fragment", [
    (None, "TF_CONFIG is not set"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}', "one worker"),
    ('{"cluster": {"worker": [', "not valid JSON"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 5}}', "task"),
])
def test_multiworker_without_a_usable_cluster_is_one_line_before_the_run_folder(tf_config, fragment, mini_store, tmp_path,
                                                                               capsys, monkeypatch):
    from helpers import TINY_CHAIN

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    config = TINY_CHAIN.to_json(tmp_path / "config.json")
    code, err = run_cli(["train", "--store", str(mini_store), "--out", str(tmp_path / "run"), "--config", str(config),
                         "--strategy", "multiworker", "--quiet"], capsys)
    assert_one_line_error(code, err, "train", "--strategy multiworker", fragment)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 7. --resize-vis with float or 16-bit colour

def test_resize_box_of_a_float_rgb_image_is_the_mean_of_each_block():
    from tf_twogan.images import resize_box

    image = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3) * 1.5
    blocks = image.reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))  # 2x2 blocks: the box filter at a factor of 2
    resized = resize_box(image, 2, 2)
    assert resized.dtype == np.float32
    np.testing.assert_allclose(resized, blocks, rtol=1e-6)
    wide = (np.arange(4 * 4 * 3).reshape(4, 4, 3) * 1000).astype(np.uint16)
    np.testing.assert_array_equal(resize_box(wide, 2, 2), np.round(wide.reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))))


def test_fuse_resize_vis_accepts_a_float_rgb_tiff(tiny_checkpoint, tmp_path, capsys):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "ir.png", rng.integers(0, 256, (40, 48)).astype(np.uint8))
    iio.imwrite(tmp_path / "vis.tif", rng.uniform(0, 255, (80, 96, 3)).astype(np.float32))
    from tf_twogan.cli import main

    out = tmp_path / "fused.png"
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.tif"), "--out", str(out),
                 "--checkpoint", str(tiny_checkpoint), "--resize-vis"]) == 0
    assert iio.imread(out).shape == (40, 48, 3)


# ----------------------------------------------------------------------------- 9. prepare --verify and glob characters

@pytest.mark.parametrize("name", ["[2]", "a*b"])
@pytest.mark.needs_data("tno")
def test_verify_notices_a_changed_source_whose_name_holds_glob_characters(name, tmp_path):
    import shutil

    from helpers import TNO
    from tf_twogan.store import StoreError, prepare_store, verify_store

    ir, vis = tmp_path / "ir", tmp_path / "vis"
    ir.mkdir(), vis.mkdir()
    for kind, folder in (("ir", ir), ("vis", vis)):
        source = next((TNO / kind).glob("2.*"))
        shutil.copy(source, folder / f"{name}{source.suffix}")
    store = prepare_store(ir, vis, tmp_path / "s.h5", stride=100, progress=False)
    assert "2 of 2 source files found and unchanged" in verify_store(store)[-1]
    (source,) = vis.iterdir()
    data = source.read_bytes()
    source.write_bytes(data[:-1] + bytes([255 - data[-1]]))
    with pytest.raises(StoreError, match="has changed"):
        verify_store(store)


# ----------------------------------------------------------------------------- the package's public face

def test_the_package_exports_its_everyday_names_without_importing_tensorflow():
    code = ("import sys, tf_twogan; assert 'tensorflow' not in sys.modules, 'imported at import time'; "
            "from tf_twogan import preset, evaluate_folders; assert 'tensorflow' not in sys.modules, 'by config/evaluate'; "
            "import tf_twogan.inference, tf_twogan.training, tf_twogan.store, tf_twogan.video, tf_twogan.fusiongan; "
            "import tf_twogan.export, tf_twogan.config, tf_twogan.evaluate; "
            "missing = [n for n in tf_twogan.__all__ if n != '__version__' and not callable(getattr(tf_twogan, n))]; "
            "assert not missing, missing; "
            "assert tf_twogan.Fuser is tf_twogan.inference.Fuser and tf_twogan.train is tf_twogan.training.train; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
