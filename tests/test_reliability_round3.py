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


def _multiworker_train(store: Path, out: Path, config: Path, timeout: str) -> subprocess.Popen:
    """``twogan train --strategy multiworker`` as worker 0 of two on localhost; nothing listens at the other's port."""
    from test_distribute import free_ports

    own, peer = free_ports(2)
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{own}", f"127.0.0.1:{peer}"]}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TWOGAN_CLUSTER_TIMEOUT": timeout,
           "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen([sys.executable, "-m", "tf_twogan.cli", "train", "--store", str(store), "--out", str(out),
                                "--config", str(config), "--strategy", "multiworker", "--quiet"],
                               env=env, stderr=subprocess.PIPE, text=True)
    process.peer = f"127.0.0.1:{peer}"
    return process


@pytest.fixture
def watchdog():
    """``watchdog(process)`` kills it after 60 s (before the fix it hung for good), and at the end of the test."""
    import threading

    timers = []

    def watch(process: subprocess.Popen) -> subprocess.Popen:
        timers.append((threading.Timer(60, process.kill), process))
        timers[-1][0].start()
        return process

    yield watch
    for timer, process in timers:
        timer.cancel()
        process.kill()
        process.wait()


def test_multiworker_with_an_unreachable_peer_gives_up_after_the_timeout_naming_it(mini_store, tmp_path, watchdog):
    from helpers import TINY_CHAIN

    process = watchdog(_multiworker_train(mini_store, tmp_path / "run", TINY_CHAIN.to_json(tmp_path / "config.json"), "2"))
    _, err = process.communicate()
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("twogan train: error: --strategy multiworker: worker(s) " + process.peer), lines
    assert "not reachable after 2 s" in lines[-1]
    assert not (tmp_path / "run").exists()


def test_multiworker_waiting_for_its_peers_stops_on_sigterm(mini_store, tmp_path, watchdog):
    import signal

    from helpers import TINY_CHAIN

    process = watchdog(_multiworker_train(mini_store, tmp_path / "run", TINY_CHAIN.to_json(tmp_path / "config.json"), "120"))
    waiting = process.stderr.readline()  # said once the first look finds a peer missing
    assert waiting.startswith("waiting up to 120 s for worker(s) " + process.peer), waiting
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait() == 130, rest
    assert rest.startswith("twogan train: interrupted") and "Traceback" not in rest, rest
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


# ----------------------------------------------------------------------------- 10. the review: mixed precision, build

@pytest.fixture
def mixed_bfloat16():
    """The global dtype policy ``mixed_bfloat16`` for one test, float32 again after it."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_under_mixed_bfloat16_the_spectral_norm_output_conv_and_linear_unit_compute_in_float32(mixed_bfloat16):
    import tensorflow as tf

    from tf_twogan.models import Discriminator, Generator, WeightSpectralNorm

    generator = Generator(widths=(4, 4, 4, 4), spectral_norm=True)
    discriminator = Discriminator(widths=(4, 4), spectral_norm=True, input_size=16)
    generator.build(), discriminator.build()
    for wrapper in (generator.output_conv, discriminator.linear):
        assert isinstance(wrapper, WeightSpectralNorm)
        assert (wrapper.compute_dtype, wrapper.layer.compute_dtype) == ("float32", "float32"), wrapper.name
    assert generator.hidden_layers[0].compute_dtype == "bfloat16"  # the rest stays mixed
    images = tf.random.stateless_uniform((2, 16, 16, 2), seed=(1, 2), minval=-1, maxval=1)
    hidden = images
    for layer in generator.hidden_layers:
        hidden = layer(hidden)
    assert hidden.dtype == tf.bfloat16
    assert generator.output_conv(hidden).dtype == tf.float32
    assert generator(images).dtype == tf.float32
    assert discriminator(images[..., :1]).dtype == tf.float32


def test_a_discriminator_is_built_by_a_symbolic_call_and_exports(tmp_path):
    import keras
    import tensorflow as tf

    from tf_twogan.models import Discriminator

    discriminator = Discriminator(widths=(4, 4), input_size=16)
    discriminator.build((None, 16, 16, 1))  # as AdversarialPair.build does
    assert discriminator.built and all(layer.built for layer in discriminator.layers)
    discriminator.export(str(tmp_path / "d"), verbose=False)  # refused for a model Keras considers never called
    assert tuple(discriminator(keras.KerasTensor((None, 16, 16, 1))).shape) == (None, 1)
    loaded = tf.saved_model.load(str(tmp_path / "d"))  # kept: its variables die with it
    served = loaded.serve(tf.ones((2, 16, 16, 1)))
    np.testing.assert_allclose(np.asarray(served), np.asarray(discriminator(tf.ones((2, 16, 16, 1)))), rtol=1e-5)


def _open_files_under(folder: Path) -> list[str]:
    """Paths under ``folder`` that this process holds open (from /proc/self/fd)."""
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(folder)):
            opened.append(target)
    return opened


def open_files_at_train_end(folder: Path):
    """A callback, last in the trainer's list, that records the files under ``folder`` still open when fit ends."""
    import keras

    class Recorder(keras.callbacks.Callback):
        files: list[str] | None = None

        def on_train_end(self, logs=None):
            self.files = _open_files_under(folder)

    return Recorder()


@pytest.fixture(scope="module")
def mixed_bfloat16_gan1(mini_store, tmp_path_factory):
    """GAN 1 at tiny widths with spectral norm, trained 3 steps in ``mixed_bfloat16`` by the real trainer."""
    import keras

    from helpers import tiny_training_config
    from tf_twogan.gan import GAN1
    from tf_twogan.training import configure_runtime, open_run_folder, train_pair

    config = tiny_training_config(batch_size=4, epochs=1, steps_per_epoch=3, seed=1, precision="mixed_bfloat16").replace(
        generator={"spectral_norm": True}, discriminator={"spectral_norm": True})
    run = open_run_folder(tmp_path_factory.mktemp("mixed") / "run", config)
    configure_runtime(1, "mixed_bfloat16")
    at_end = open_files_at_train_end(run.root)
    try:
        pair = train_pair(run, mini_store, config, GAN1, verbose=0, callbacks=[at_end])
        yield run, pair, at_end.files
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_tiny_training_in_mixed_bfloat16_has_finite_losses_float32_weights_and_float32_outputs(mixed_bfloat16_gan1):
    import tensorflow as tf

    from helpers import read_csv
    from tf_twogan.gan import GAN1

    run, pair, _ = mixed_bfloat16_gan1
    (row,) = read_csv(run.history(GAN1))
    for name in ("d_loss", "g_loss", "g_adversarial", "g_content"):
        assert np.isfinite(float(row[name])), name
    for network in (pair.generator, pair.discriminator):
        assert {variable.dtype for variable in network.weights} == {"float32"}, network.name
    patches = tf.zeros((1, 16, 16, 2))
    assert pair.generator(patches).dtype == tf.float32
    assert pair.discriminator(tf.zeros((1, pair.discriminator.input_size, pair.discriminator.input_size, 1))).dtype == tf.float32


def test_the_trainer_leaves_no_tensorboard_event_file_open(mixed_bfloat16_gan1):
    run, _, still_open = mixed_bfloat16_gan1
    assert any(run.root.glob("logs/**/samples/events.out.tfevents.*")), "the sample writer wrote nothing"
    assert still_open == []


# ----------------------------------------------------------------------------- 8. evaluate: memory by workers x pixels

def _evaluation_folders(root: Path, sizes: dict[str, int]) -> tuple[Path, Path, Path]:
    """``ir``, ``vis`` and one ``fused`` folder of square gray pairs named and sized by ``sizes`` (side in pixels)."""
    from test_reliability import write_png

    folders = tuple(root / kind for kind in ("ir", "vis", "fused"))
    for name, side in sizes.items():
        ramp = np.add.outer(np.arange(side), 2 * np.arange(side))
        for shift, folder in enumerate(folders):
            write_png(folder / f"{name}.png", ((ramp + 40 * shift) % 256).astype(np.uint8))
    return folders


def test_evaluate_scores_fewer_pairs_at_once_when_they_exceed_the_pixel_budget(tmp_path):
    from tf_twogan.evaluate import evaluate_folders

    ir, vis, fused = _evaluation_folders(tmp_path, {str(n): 60 for n in range(6)})  # 3600 pixels a pair
    one_at_a_time = evaluate_folders(ir, vis, fused, tmp_path / "small", metrics="EN,SD", progress=False, workers=3,
                                     pixel_budget=5000)
    assert one_at_a_time.peak_pairs == 1  # two pairs (7200 pixels) never held at once
    wide = evaluate_folders(ir, vis, fused, tmp_path / "wide", metrics="EN,SD", progress=False, workers=3,
                            pixel_budget=11_000)
    assert 1 <= wide.peak_pairs <= 3
    assert wide.means == one_at_a_time.means


def test_the_pixel_budget_admits_pairs_in_order_and_together_only_while_they_fit():
    import threading

    from tf_twogan.evaluate import PixelBudget

    budget = PixelBudget(100)
    both_in = threading.Barrier(2, timeout=30)  # broken (an error) if the two cannot be inside at once
    entered = []

    def score(ticket: int, pixels: int, meet: bool) -> None:
        with budget.hold(ticket, pixels):
            entered.append(ticket)
            if meet:
                both_in.wait()

    threads = [threading.Thread(target=score, args=(ticket, 50, True)) for ticket in (1, 0)]  # started out of order
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert entered == [0, 1] and budget.peak_pairs == 2 and not both_in.broken
    large = [threading.Thread(target=score, args=(ticket, 150, False)) for ticket in (2, 3)]  # each alone over the budget
    for thread in large:
        thread.start()
    for thread in large:
        thread.join()
    assert entered == [0, 1, 2, 3] and budget.peak_pairs == 2


_OUT_OF_MEMORY = """
import resource, sys
import tf_twogan.cli, tf_twogan.evaluate, tf_twogan.metrics, tf_twogan.console
import PIL.Image, imageio.v3, imageio.plugins.pillow  # their libraries mapped before the limit
size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + 150 * 2 ** 20,) * 2)  # 150 MiB more address space than now
sys.exit(tf_twogan.cli.main(sys.argv[1:]))
"""


def test_evaluate_out_of_memory_is_one_line_naming_the_pair(tmp_path):
    ir, vis, fused = _evaluation_folders(tmp_path, {"big": 2000})  # 4 megapixels: about 480 MB to score
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", _OUT_OF_MEMORY, "evaluate", "--ir", str(ir), "--vis", str(vis),
                           "--fused", str(fused), "--out", str(out), "--quiet", "--workers", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.returncode, done.stderr, "evaluate", str(ir / "big.png"), "out of memory", "pair big")
    assert files_under(out) == set()


# ----------------------------------------------------------------------------- minor: large and multi-page images

def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG of ``width`` x ``height`` gray pixels as far as its header goes (no pixel data: nothing to decode)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("command", ["fuse", "evaluate"])
def test_a_400_megapixel_image_is_refused_as_too_large_naming_the_limit(command, tiny_checkpoint, tmp_path, capsys):
    from test_reliability import write_png

    big = _png_header_only(tmp_path / "ir" / "a.png" if command == "evaluate" else tmp_path / "a.png", 20000, 20000)
    if command == "fuse":
        write_png(tmp_path / "b.png", np.zeros((40, 40), np.uint8))
        argv = ["fuse", "--ir", str(big), "--vis", str(tmp_path / "b.png"), "--out", str(tmp_path / "out" / "f.png"),
                "--checkpoint", str(tiny_checkpoint)]
        limit = "178 megapixels the image reader accepts"  # Pillow's decompression-bomb limit; fuse tiles below it
    else:
        for kind in ("vis", "fused"):
            write_png(tmp_path / kind / "a.png", np.zeros((40, 40), np.uint8))
        argv = ["evaluate", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--fused", str(tmp_path / "fused"),
                "--out", str(tmp_path / "out"), "--quiet"]
        limit = "50 megapixels this command holds in memory"
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, command, str(big), "image of 400 megapixels is larger than the", limit)
    assert "damaged" not in err
    assert files_under(tmp_path / "out") == set()


def test_a_multi_page_tiff_is_refused_from_its_header(tmp_path, capsys):
    from PIL import Image

    from tf_twogan.images import image_size

    pages = [Image.fromarray(np.full((30, 40), 50 * k, np.uint8)) for k in range(5)]
    stack = tmp_path / "ir" / "a.tif"
    stack.parent.mkdir()
    pages[0].save(stack, save_all=True, append_images=pages[1:])
    with pytest.raises(ValueError, match="holds 5 images"):
        image_size(stack)  # from the header: nothing decoded
    for kind in ("ir", "vis", "fused"):  # and a good pair b
        (tmp_path / kind).mkdir(exist_ok=True)
        for name in ("a", "b")[kind == "ir":]:
            pages[0].save(tmp_path / kind / f"{name}.png")
    code, err = run_cli(["evaluate", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--workers", "2",
                         "--fused", str(tmp_path / "fused"), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert_one_line_error(code, err, "evaluate", str(stack), "holds 5 images (pages or frames); expected a single image")


# ----------------------------------------------------------------------------- minor: leftovers, names, messages, demo

def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.mark.parametrize("command", [pytest.param("prepare", marks=pytest.mark.needs_data("tno")), "fuse video"])
def test_a_rerun_removes_the_temporary_a_killed_run_left_and_nothing_else(command, tiny_checkpoint, tmp_path, capsys):
    from helpers import TNO
    from tf_twogan.locking import lock_file

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if command == "prepare":
        target = out_dir / "store.h5"
        for kind in ("ir", "vis"):  # two small pairs
            (tmp_path / kind).mkdir()
            for name in ("2", "24"):
                source = next((TNO / kind).glob(f"{name}.*"))
                (tmp_path / kind / source.name).write_bytes(source.read_bytes())
        argv = ["prepare", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--out", str(target),
                "--stride", "100", "--quiet"]
    else:
        from test_video import make_pair

        target = out_dir / "fused.mkv"
        ir, vis = make_pair(tmp_path / "in", "gray", suffix=".mkv")
        argv = ["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(target), "--checkpoint", str(tiny_checkpoint),
                "--codec", "ffv1"]
    dead = _dead_pid()
    stale = out_dir / f".twogan-tmp.{dead}.k1ll3d_x.{target.name}"  # as a SIGTERM'd run leaves it (150 MB for TNO)
    kept = {
        "live writer": out_dir / f".twogan-tmp.{os.getpid()}.l1vewr1t.{target.name}",
        "locked by a live process": out_dir / f".twogan-tmp.{dead}.l0ck3d_x.{target.name}",
        "another output's": out_dir / f".twogan-tmp.{dead}.0th3r_xx.notes.h5",
        "the user's": out_dir / f".{target.name}.tmp",
    }
    for path in (stale, *kept.values()):
        path.write_bytes(b"partial")
    held = os.open(kept["locked by a live process"], os.O_RDWR)  # a writer in another pid namespace, say
    try:
        assert lock_file(held)
        code, err = run_cli(argv, capsys)
    finally:
        os.close(held)
    assert code == 0, err
    assert not stale.exists()
    assert {name: path.read_bytes() for name, path in kept.items()} == {name: b"partial" for name in kept}
    assert target.is_file()


def test_an_output_name_as_long_as_the_file_system_allows_is_written(tiny_checkpoint, tmp_path, capsys):
    from test_reliability import write_png

    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("f" * (limit - 4) + ".png")  # 255 bytes: the temporary prefix left no room before
    write_png(tmp_path / "ir.png", np.full((24, 24), 90, np.uint8))
    write_png(tmp_path / "vis.png", np.full((24, 24), 160, np.uint8))
    code, err = run_cli(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"), "--out", str(out),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert code == 0, err
    assert out.is_file() and files_under(tmp_path) == {tmp_path / "ir.png", tmp_path / "vis.png", out}


def test_a_folder_that_is_a_file_is_named_without_errno(tmp_path, capsys):
    from test_reliability import write_png

    write_png(tmp_path / "ir" / "a.png", np.full((24, 24), 90, np.uint8))
    write_png(tmp_path / "vis" / "a.png", np.full((24, 24), 160, np.uint8))
    (tmp_path / "taken").write_text("the user's")
    code, err = run_cli(["evaluate", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"),
                         "--fused", str(tmp_path / "vis"), "--out", str(tmp_path / "taken" / "scores"), "--quiet"], capsys)
    assert_one_line_error(code, err, "evaluate", f"{tmp_path / 'taken'}: is a file, where a folder is needed")
    assert "Errno" not in err and (tmp_path / "taken").read_text() == "the user's"


@pytest.mark.parametrize("command", [pytest.param("prepare", marks=pytest.mark.needs_data("tno")), "evaluate"])
def test_a_folder_where_an_output_file_goes_is_named_not_its_temporary(command, tmp_path, capsys):
    from helpers import TNO
    from test_reliability import write_png

    if command == "prepare":
        for kind in ("ir", "vis"):
            source = next((TNO / kind).glob("2.*"))
            (tmp_path / kind).mkdir()
            (tmp_path / kind / source.name).write_bytes(source.read_bytes())
        blocked = tmp_path / "out" / "store.h5"  # renaming the written store onto it fails
        argv = ["prepare", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--out", str(blocked), "--quiet"]
        problem = "cannot be written: Is a directory"
    else:
        write_png(tmp_path / "ir" / "a.png", np.full((24, 24), 90, np.uint8))
        write_png(tmp_path / "vis" / "a.png", np.full((24, 24), 160, np.uint8))
        blocked = tmp_path / "out" / "metrics_mean.csv"  # one of four tables: none may be written
        argv = ["evaluate", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--fused", str(tmp_path / "vis"),
                "--out", str(tmp_path / "out"), "--quiet"]
        problem = "is a folder, where this output file goes"
    blocked.mkdir(parents=True)
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, command, f"{blocked}: {problem}")
    assert ".twogan-tmp" not in err and "Errno" not in err
    assert files_under(tmp_path / "out") == set()


@pytest.mark.parametrize("version", ["²", "١", "1²"])  # superscript two, Arabic-Indic one: str.isdigit takes both
def test_export_refuses_a_version_that_is_not_ascii_digits(version, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "serving" / version
    code, err = run_cli(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "export", str(out), "numeric model version")
    assert files_under(tmp_path) == set()


def test_evaluate_workers_from_the_environment_must_be_ascii_digits(monkeypatch):
    from tf_twogan.config import ConfigError
    from tf_twogan.evaluate import default_workers

    monkeypatch.setenv("TWOGAN_EVALUATE_WORKERS", "²")  # str.isdigit takes it, int() does not
    with pytest.raises(ConfigError, match="TWOGAN_EVALUATE_WORKERS must be a positive integer"):
        default_workers()


def test_demo_never_replaces_a_users_metrics_md_but_replaces_its_own(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.demo import DEMO_MARK, claim_output_folder

    user = tmp_path / "mine"
    user.mkdir()
    (user / "metrics.md").write_text("my notes\n")
    code, err = run_cli(["demo", "--out", str(user), "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "demo", str(user / "metrics.md"), "not written by twogan demo")
    assert files_under(user) == {user / "metrics.md"} and (user / "metrics.md").read_text() == "my notes\n"
    earlier = tmp_path / "demo"  # an earlier demo's folder (the whole demo runs in tests/test_inference.py)
    earlier.mkdir()
    (earlier / DEMO_MARK).write_text("")
    (earlier / "metrics.md").write_text("| image | an earlier demo's table |\n")
    claim_output_folder(earlier, [earlier / "metrics.md"])  # accepted: its outputs are the demo's to replace
