"""Reliability, round two (issue 13): nothing a user owns is lost, every failure is one clear line.

Real files and real processes.  Subprocesses run in a scratch folder with this
process's ``PYTHONPATH``, so they import the same ``tf_twogan`` as the tests.
Helpers for the one-line contract come from ``test_reliability``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest

from helpers import gan3_train_argv, history_epochs
from helpers import random_gray as gray
from test_reliability import KILL_DRIVER, assert_one_line_error, files_under, run_cli, train_argv, write_png

QUICK_TRAIN = ["--preset", "lite", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--seed", "3", "--quiet"]


def twogan(argv: list[str], cwd: Path) -> subprocess.Popen:
    """A real ``twogan`` process (``python -m tf_twogan.cli``) started in ``cwd``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-m", "tf_twogan.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def dead_pid(cwd: Path) -> int:
    """The pid of a process that has exited (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"], cwd=cwd)
    process.wait()
    return process.pid


def wait_for(condition, process: subprocess.Popen, seconds: float = 300) -> None:
    """Poll ``condition`` until it holds; fail if ``process`` exits first."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# ----------------------------------------------------------------------------- 1. one trainer per run folder

def test_a_second_train_on_a_busy_run_folder_exits_2_naming_the_holder_pid(mini_store, tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_argv(mini_store, run, "--epochs", "50", "--steps-per-epoch", "4")
    first = twogan(argv, tmp_path)
    try:
        lock_file = run / "twogan.lock"  # written once the first one holds the lock (before the fix: its first epoch)
        wait_for(lambda: (lock_file.is_file() and lock_file.read_text().strip() == str(first.pid))
                 or history_epochs(run / "history_gan1.csv"), first, seconds=900)
        code, err = run_cli(argv, capsys)
        assert_one_line_error(code, err, "train", str(run), f"pid {first.pid}", "in use")
        assert first.poll() is None, "the first trainer must be unharmed"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    # the killed holder's lock file is stale: the next lock takes it over
    from tf_twogan.locking import FolderLock

    assert lock_file.read_text().strip() == str(first.pid)
    with FolderLock(run, "twogan train"):
        assert lock_file.read_text().strip() == str(os.getpid())
    assert not lock_file.exists()


def test_a_held_folder_lock_refuses_a_second_holder_even_in_the_same_process(tmp_path):
    from tf_twogan.locking import FolderLock, LockError

    with FolderLock(tmp_path / "run", "twogan train"):
        with pytest.raises(LockError, match=rf"pid {os.getpid()}"):
            FolderLock(tmp_path / "run", "twogan train").acquire()
    with FolderLock(tmp_path / "run"):  # released: free again
        pass


# ----------------------------------------------------------------------------- 2. + 6. user files and a failed attempt

def test_train_keeps_user_files_and_live_temporaries_and_removes_only_its_dead_temporaries(mini_store, tiny_run, tmp_path, capsys):
    run = tmp_path / "u"
    run.mkdir()
    user = {run / ".notes.tmp.txt": "x\n", run / ".a.b1c2.tmp.png": "mine\n", run / "notes.txt": "keep\n"}
    for path, text in user.items():
        path.write_text(text)
    dead = run / f".twogan-tmp.{dead_pid(tmp_path)}.abc123de.g1.keras"
    live = run / f".twogan-tmp.{os.getpid()}.abc123de.g2.keras"  # a running process's write in flight
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    code, err = run_cli(gan3_train_argv(mini_store, run, tiny_run / "config.json", tiny_run), capsys)
    assert code == 0, err
    assert {path: path.read_text() for path in user} == user
    assert not dead.exists() and live.exists()
    assert not (run / "twogan.lock").exists()


def test_a_run_that_failed_before_its_first_epoch_does_not_block_the_corrected_rerun(mini_store, tiny_run, tmp_path, capsys):
    """A Ctrl-C (or any failure) before the first epoch leaves config.json and empty logs, nothing trained."""
    from tf_twogan.config import preset

    run = tmp_path / "run"
    (run / "logs" / "gan1").mkdir(parents=True)
    preset("lite").replace(train={"epochs": 40, "batch_size": 100000}).to_json(run / "config.json")
    code, err = run_cli(gan3_train_argv(mini_store, run, tiny_run / "config.json", tiny_run), capsys)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 1
    assert history_epochs(run / "history_gan3.csv") == [0]


# ----------------------------------------------------------------------------- shared inputs

def pair_folders_with(tmp_path: Path, names: list[str], size: tuple[int, int] = (64, 64)) -> tuple[Path, Path]:
    """Folders ``ir`` and ``vis`` holding one random gray PNG per name."""
    ir, vis = tmp_path / "ir", tmp_path / "vis"
    for number, name in enumerate(names):
        write_png(ir / f"{name}.png", gray(*size, seed=number))
        write_png(vis / f"{name}.png", gray(*size, seed=100 + number))
    return ir, vis


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in files_under(folder)}


# ----------------------------------------------------------------------------- 3. outputs never over inputs

@pytest.mark.parametrize("target", ["image_in_ir", "ir_folder", "inside_vis", "split_file"])
def test_prepare_refuses_an_output_over_or_inside_an_input(target, tmp_path, capsys):
    ir, vis = pair_folders_with(tmp_path, ["a"], (140, 140))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["a"]}))
    out = {"image_in_ir": ir / "a.png", "ir_folder": ir, "inside_vis": vis / "store.h5", "split_file": split}[target]
    before = snapshot(tmp_path)
    code, err = run_cli(["prepare", "--ir", str(ir), "--vis", str(vis), "--split", str(split), "--out", str(out), "--quiet"], capsys)
    assert_one_line_error(code, err, "prepare", str(out), "input")
    assert snapshot(tmp_path) == before


def test_evaluate_refuses_an_output_folder_that_is_an_input_folder(tmp_path, capsys):
    ir, vis = pair_folders_with(tmp_path, ["a", "b"])
    fused = tmp_path / "fused"
    for name in ("a", "b"):
        write_png(fused / f"{name}.png", gray(64, 64, seed=7))
    before = snapshot(tmp_path)
    for out in (ir, vis, fused):
        code, err = run_cli(["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(fused), "--out", str(out),
                             "--metrics", "EN", "--quiet"], capsys)
        assert_one_line_error(code, err, "evaluate", str(out), "is an input folder")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- 5. images read as meant, or refused

def test_a_float_tiff_in_0_1_is_read_as_0_1_and_fuses_like_its_8_bit_twin(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.images import read_image

    ir8, vis8 = gray(40, 48, seed=1), gray(40, 48, seed=2)
    ir_float = tmp_path / "ir.tif"
    iio.imwrite(ir_float, (ir8 / 255.0).astype(np.float32), extension=".tif")
    np.testing.assert_allclose(read_image(ir_float), ir8, atol=1e-3)
    vis = write_png(tmp_path / "vis.png", vis8)
    for ir, out in ((ir_float, tmp_path / "from_float.png"), (write_png(tmp_path / "ir.png", ir8), tmp_path / "from_uint8.png")):
        code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
                             "--quiet"], capsys)
        assert code == 0, err
    difference = np.abs(iio.imread(tmp_path / "from_float.png").astype(int) - iio.imread(tmp_path / "from_uint8.png"))
    assert difference.max() <= 1  # the float input differs from the 8-bit one by float rounding only


@pytest.mark.parametrize("value", [-0.5, 300.0])
def test_a_float_tiff_outside_0_255_is_refused_naming_it(value, tiny_checkpoint, tmp_path, capsys):
    image = np.full((32, 32), 100.0, np.float32)
    image[4, 4] = value
    bad = tmp_path / "bad.tif"
    iio.imwrite(bad, image, extension=".tif")
    good = write_png(tmp_path / "good.png", gray(32, 32))
    code, err = run_cli(["fuse", "--ir", str(bad), "--vis", str(good), "--out", str(tmp_path / "out" / "f.png"),
                         "--checkpoint", str(tiny_checkpoint), "--quiet"], capsys)
    assert_one_line_error(code, err, "fuse", str(bad), "outside 0..1 and 0..255")
    assert not (tmp_path / "out").exists()


def test_a_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    from PIL import Image

    from tf_twogan.images import read_image, to_gray

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, np.arange(64)[None, :] * 3, 40
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    with Image.open(path) as opened:
        assert opened.mode == "CMYK"
    image = read_image(path)
    assert image.shape == rgb.shape
    assert np.abs(to_gray(image) - to_gray(rgb)).mean() < 2.0  # JPEG loss only, not the 82 grey levels of CMYK-as-RGBA


def test_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    from tf_twogan.images import read_image

    stored = gray(20, 30, seed=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "portrait.png"
    Image.fromarray(stored).save(path, exif=exif)
    np.testing.assert_array_equal(read_image(path), np.rot90(stored, k=-1))


# ----------------------------------------------------------------------------- 6. + 12. config types and messages

def write_config(path: Path, edit) -> Path:
    from tf_twogan.config import preset

    data = preset("lite").to_dict()
    edit(data)
    path.write_text(json.dumps(data))
    return path


def nested(depth: int) -> str:
    return '{"train": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("case, edit, problem", [
    ("bool as string", lambda d: d["train"].update(swap_second_layer="false"), "train.swap_second_layer must be of type bool"),
    ("bool as int", lambda d: d["train"].update(batch_size=True), "train.batch_size must be of type int, got bool"),
    ("tuple as int", lambda d: d["generator"].update(widths=5), "generator.widths must be of type tuple[int, ...]"),
    ("tuple as null", lambda d: d["generator"].update(widths=None), "generator.widths must be of type tuple[int, ...]"),
    ("float as string", lambda d: d["loss"].update(gradient_weight="5"), "loss.gradient_weight must be of type float"),
    ("label as bool", lambda d: d["loss"]["real_label"].update(low=True), "config.loss.real_label: label range low"),
])
def test_config_values_of_the_wrong_type_are_refused_naming_the_field(case, edit, problem, mini_store, tmp_path, capsys):
    config = write_config(tmp_path / "c.json", edit)
    out = tmp_path / "run"
    code, err = run_cli(["train", "--store", str(mini_store), "--out", str(out), "--config", str(config), "--quiet"], capsys)
    assert_one_line_error(code, err, "train", str(config), problem)
    assert not out.exists()


def test_unreadable_configs_give_one_short_line_naming_the_file(mini_store, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text(nested(100_000))
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"preset": "lité"}'.encode("latin-1"))
    huge = write_config(tmp_path / "huge.json", lambda d: d["train"].update(precision="x" * 10_000_000))
    for config, problem in ((deep, "nested too deeply"), (latin, "UnicodeDecodeError"), (huge, "train.precision must be")):
        code, err = run_cli(["train", "--store", str(mini_store), "--out", str(tmp_path / "run"), "--config", str(config),
                             "--quiet"], capsys)
        assert_one_line_error(code, err, "train", str(config), problem)
        assert len(err) < 1000, len(err)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 11. + 10. folder fuse

def test_folder_fuse_checks_every_pair_before_writing_anything(tiny_checkpoint, tmp_path, capsys):
    ir, vis = pair_folders_with(tmp_path, ["a", "b", "z"], (40, 40))
    (vis / "z.png").write_bytes((vis / "z.png").read_bytes()[:60])  # truncated, last in order
    out = tmp_path / "out"
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
                         "--quiet"], capsys)
    assert_one_line_error(code, err, "fuse", str(vis / "z.png"), "cannot be read as an image")
    assert files_under(out) == set()


KILL_BEFORE = KILL_DRIVER  # os.replace patched to SIGKILL just before it renames onto $TWOGAN_KILL_BEFORE


def test_an_interrupted_folder_fuse_leaves_no_temporary_for_good_and_the_rerun_keeps_finished_outputs(tiny_checkpoint, tmp_path):
    ir, vis = pair_folders_with(tmp_path, ["a", "b", "c"], (40, 40))
    out = tmp_path / "out"
    argv = ["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TWOGAN_KILL_BEFORE": "b.png"}
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "a.png").is_file() and not (out / "b.png").exists()
    assert [path.name for path in out.iterdir() if path.name.startswith(".")], "the killed run leaves its temporary"
    first = (out / "a.png").stat().st_mtime_ns, (out / "a.png").read_bytes()

    rerun = twogan(argv, tmp_path)
    output, _ = rerun.communicate()
    assert rerun.returncode == 0, output
    assert "kept 1 output(s) already complete" in output
    assert sorted(path.name for path in out.iterdir()) == ["a.png", "b.png", "c.png"]  # the temporary is gone
    assert ((out / "a.png").stat().st_mtime_ns, (out / "a.png").read_bytes()) == first
    code = subprocess.run([sys.executable, "-m", "tf_twogan.cli", "evaluate", "--ir", str(ir), "--vis", str(vis),
                           "--fused", str(out), "--out", str(tmp_path / "eval"), "--metrics", "EN", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert code.returncode == 0, code.stderr


# ----------------------------------------------------------------------------- 8. stores checked up front

def damaged_store(mini_store: Path, tmp_path: Path, damage: str) -> tuple[Path, str]:
    path = tmp_path / f"{damage}.h5"
    path.write_bytes(mini_store.read_bytes())
    with h5py.File(path, "a") as handle:
        if damage in ("patch_count", "kinds"):
            del handle.attrs[damage]
            return path, f"missing attribute(s) {damage}"
        if damage == "kind_without_dataset":
            handle.attrs["kinds"] = json.dumps(["ir", "vis", "nir"])
            return path, "missing dataset(s) nir"
        if damage == "stride":
            handle.attrs["stride"] = 47
            return path, "not the 128-pixel grid at stride 47"
        if damage == "float_dataset":
            shape = handle["ir"].shape
            del handle["ir"]
            handle.create_dataset("ir", data=np.full(shape, 1e30, np.float32))
            return path, "dataset ir is float32"
        if damage == "flipped_byte":
            offset = handle["vis"].id.get_chunk_info(0).byte_offset + 1000
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path, "dataset vis"


STORE_DAMAGE = ["patch_count", "kinds", "kind_without_dataset", "stride", "float_dataset", "flipped_byte"]


@pytest.mark.parametrize("damage", STORE_DAMAGE)
def test_train_and_verify_refuse_a_damaged_store_in_one_line_before_training(damage, mini_store, tmp_path, capsys):
    store, problem = damaged_store(mini_store, tmp_path, damage)
    code, err = run_cli(["prepare", "--verify", str(store)], capsys)
    assert_one_line_error(code, err, "prepare", str(store), problem)
    code, err = run_cli(train_argv(store, tmp_path / "run", *QUICK_TRAIN), capsys)
    assert_one_line_error(code, err, "train", str(store), problem)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 9. + 12. memory and SSIM size

def test_evaluate_and_prepare_refuse_an_image_above_the_pixel_budget_naming_it(tmp_path, capsys):
    from PIL import Image

    ir, vis = tmp_path / "ir", tmp_path / "vis"
    ir.mkdir(), vis.mkdir()
    big = ir / "big.png"
    Image.new("L", (8000, 7000)).save(big)  # 56 megapixels of zeros: a 60 kB file
    Image.new("L", (8000, 7000)).save(vis / "big.png")
    code, err = run_cli(["prepare", "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "s.h5"), "--quiet"], capsys)
    assert_one_line_error(code, err, "prepare", str(big), "8000x7000", "megapixels")
    code, err = run_cli(["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(vis), "--out", str(tmp_path / "e"),
                         "--quiet"], capsys)
    assert_one_line_error(code, err, "evaluate", str(big), "megapixels")
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "e").exists()


def test_evaluate_names_the_fused_file_below_the_ssim_window(tmp_path, capsys):
    ir, vis = pair_folders_with(tmp_path, ["a"], (8, 8))
    fused = tmp_path / "fused"
    write_png(fused / "a.png", gray(8, 8))
    code, err = run_cli(["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(fused), "--out", str(tmp_path / "e"),
                         "--metrics", "SSIM", "--quiet"], capsys)
    assert_one_line_error(code, err, "evaluate", str(fused / "a.png"), "at least 11x11")
    assert not (tmp_path / "e").exists()


# ----------------------------------------------------------------------------- 7. + 12. full disk (a real 2 MB tmpfs)

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs mounted for this test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` with one file until about ``leave`` bytes stay free."""
    import shutil

    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


@pytest.mark.needs_data("tno")
def test_prepare_on_a_full_disk_exits_2_in_one_line_and_leaves_nothing(small_disk, mini_split, tmp_path):
    from helpers import TNO

    out = small_disk / "store.h5"
    process = twogan(["prepare", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--split", str(mini_split),
                      "--out", str(out), "--stride", "48", "--quiet"], tmp_path)
    output, _ = process.communicate()
    assert process.returncode == 2, output  # not 139 (a crash inside libhdf5)
    assert_one_line_error(2, output, "prepare", str(out), "disk space")
    assert list(small_disk.iterdir()) == []


def test_train_on_a_full_disk_exits_2_in_one_line_and_leaves_nothing(small_disk, mini_store, capsys):
    out = small_disk / "run"
    code, err = run_cli(train_argv(mini_store, out, *QUICK_TRAIN), capsys)
    assert_one_line_error(code, err, "train", str(out), "disk space")
    assert list(small_disk.iterdir()) == []


def test_evaluate_on_a_full_disk_writes_none_of_its_outputs(small_disk, tmp_path, capsys):
    ir, vis = pair_folders_with(tmp_path, ["a", "b"])
    fused = tmp_path / "fused"
    for name in ("a", "b"):
        write_png(fused / f"{name}.png", gray(64, 64, seed=9))
    filler = fill(small_disk, 16 * 1024)  # room for the tables, not for the plot
    out = small_disk / "eval"
    code, err = run_cli(["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(fused), "--out", str(out), "--quiet"], capsys)
    assert_one_line_error(code, err, "evaluate", str(out), "No space left on device")
    assert files_under(out) == set() and set(small_disk.iterdir()) <= {filler, out}


def test_export_and_fuse_on_a_full_disk_name_the_output(small_disk, tiny_checkpoint, tmp_path, capsys):
    fill(small_disk, 64 * 1024)
    code, err = run_cli(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(small_disk / "model" / "1")], capsys)
    assert_one_line_error(code, err, "export", str(small_disk / "model" / "1"), "No space left on device")
    assert list((small_disk / "model").iterdir()) == []
    fill(small_disk, 0)
    ir = write_png(tmp_path / "ir.png", gray(256, 256))
    out = small_disk / "f.png"
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
                         "--quiet"], capsys)
    assert_one_line_error(code, err, "fuse", str(out), "No space left on device")
    assert sorted(path.name for path in small_disk.iterdir()) == ["filler", "model"]
