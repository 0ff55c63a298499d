"""Reliability: bad input everywhere, crashes (real ``kill -9``), safe loading, output confinement.

Every bad-input case runs through ``twogan`` (``cli.main``) and checks the contract:
exit status 2, one error line naming the file (or option) and the problem, no
traceback unless ``--debug``, and no output written.  The same inputs through the
Python API raise the named exception.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest

from helpers import REPO, TINY_CHAIN, gan3_train_argv, history_epochs, random_gray, tiny_training_config
from tf_twogan.cli import main
from tf_twogan.config import ConfigError, TwoGanConfig, preset
from tf_twogan.images import ImageError, read_image
from tf_twogan.store import PatchStore, StoreError


# ----------------------------------------------------------------------------- helpers

def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and the stderr of ``twogan argv`` run in this process."""
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"twogan {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file() or path.is_symlink()} if folder.exists() else set()


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image, extension=".png")
    return path


def bad_image(kind: str, folder: Path) -> tuple[Path, str]:
    """A broken image file of one kind and the words its error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        path = write_png(folder / "truncated.png", random_gray(64, 64))
        path.write_bytes(path.read_bytes()[:60])
        return path, "cannot be read as an image"
    if kind == "not_an_image":
        path = folder / "notes.png"
        path.write_text("this is not a PNG\n")
        return path, "cannot be read as an image"
    if kind == "empty":
        path = folder / "empty.png"
        path.write_bytes(b"")
        return path, "file is empty"
    if kind in ("nan", "inf"):
        image = np.full((32, 32), 100.0, np.float32)
        image[3, 5] = np.nan if kind == "nan" else np.inf
        path = folder / f"{kind}.tif"
        iio.imwrite(path, image, extension=".tif")
        return path, "NaN or infinite"
    if kind == "missing":
        return folder / "absent.png", "no such file"
    raise AssertionError(kind)


BAD_IMAGES = ["truncated", "not_an_image", "empty", "nan", "inf", "missing"]


# ----------------------------------------------------------------------------- bad images: fuse

@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_fuse_refuses_a_bad_image_file_naming_it(kind, tiny_checkpoint, tmp_path, capsys):
    bad, problem = bad_image(kind, tmp_path / "in")
    good = write_png(tmp_path / "in" / "good.png", random_gray(32, 32))
    out = tmp_path / "out"
    for ir, vis in ((bad, good), (good, bad)):
        code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out / "f.png"),
                             "--checkpoint", str(tiny_checkpoint), "--quiet"], capsys)
        assert_one_line_error(code, err, "fuse", str(bad), problem)
    assert files_under(out) == set()
    with pytest.raises(ImageError, match=problem):
        read_image(bad)


def test_debug_shows_the_traceback(tiny_checkpoint, tmp_path):
    bad, _ = bad_image("empty", tmp_path)
    with pytest.raises(ImageError, match="file is empty"):
        main(["--debug", "fuse", "--ir", str(bad), "--vis", str(bad), "--out", str(tmp_path / "f.png"),
              "--checkpoint", str(tiny_checkpoint)])


def test_fuse_refuses_images_of_different_sizes(tiny_checkpoint, tmp_path, capsys):
    ir, vis = write_png(tmp_path / "ir.png", random_gray(32, 40)), write_png(tmp_path / "vis.png", random_gray(32, 41))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "out" / "f.png"),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(ir), str(vis), "differ in size", "32x40 vs 32x41")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(1, 1), (1, 50), (50, 4)])
def test_fuse_refuses_images_below_the_reflect_margin(shape, tiny_checkpoint, tmp_path, capsys):
    ir, vis = write_png(tmp_path / "ir.png", random_gray(*shape)), write_png(tmp_path / "vis.png", random_gray(*shape, seed=1))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "out" / "f.png"),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(ir), "too small", "x".join(map(str, shape)))
    assert not (tmp_path / "out").exists()


def test_fuse_folders_empty_missing_and_unpaired(tiny_checkpoint, tmp_path, capsys):
    ir, vis, out = tmp_path / "ir", tmp_path / "vis", tmp_path / "out"
    ir.mkdir(), vis.mkdir()
    (ir / "readme.txt").write_text("not an image")
    base = ["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--quiet"]
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), *base], capsys)
    assert_one_line_error(code, err, "fuse", str(ir), "no image files")
    code, err = run_cli(["fuse", "--ir", str(tmp_path / "nowhere"), "--vis", str(tmp_path / "nothing"), *base], capsys)
    assert_one_line_error(code, err, "fuse", "nowhere", "no such file or folder (--ir)")
    for name in ("1", "2", "10"):
        write_png(ir / f"{name}.png", random_gray(16, 16))
    for name in ("2", "10", "11"):
        write_png(vis / f"{name}.png", random_gray(16, 16))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(vis), *base], capsys)
    assert_one_line_error(code, err, "fuse", f"only in {ir}: 1", f"only in {vis}: 11", "--skip-unmatched")
    assert files_under(out) == set()


def test_fuse_refuses_out_of_range_options(tiny_checkpoint, tmp_path, capsys):
    ir = write_png(tmp_path / "ir.png", random_gray(32, 32))
    for tile in ("3", "-1"):
        code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(tmp_path / "out" / "f.png"),
                             "--checkpoint", str(tiny_checkpoint), "--tile", tile], capsys)
        assert_one_line_error(code, err, "fuse", "tile must be 0 (never tile) or at least 8", tile)
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(tmp_path / "out" / "f.txt"),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", "f.txt", "output suffix")
    with pytest.raises(SystemExit) as exit_info:  # argparse: unknown choice
        main(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", "x.png", "--precision", "float64"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- bad checkpoints and configs

def copy_checkpoint(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def lambda_network(path: Path) -> Path:
    """A ``.keras`` file whose model runs a Python lambda: exactly what safe_mode must refuse."""
    import keras

    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1] * 0 + 1)(inputs))
    model.save(path)
    return path


def test_a_keras_file_carrying_a_lambda_is_refused(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.inference import Fuser
    from tf_twogan.training import CheckpointError, load_network

    checkpoint = copy_checkpoint(tiny_checkpoint, tmp_path / "ckpt")
    lambda_network(checkpoint / "g1.keras")
    with pytest.raises(CheckpointError, match=r"g1\.keras: refused to load: it contains Python code.*Lambda"):
        load_network(checkpoint / "g1.keras")
    with pytest.raises(CheckpointError, match=r"g1\.keras: refused"):
        Fuser(checkpoint)
    ir = write_png(tmp_path / "ir.png", random_gray(32, 32))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(tmp_path / "out" / "f.png"),
                         "--checkpoint", str(checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(checkpoint / "g1.keras"), "refused to load")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "text", "foreign_model"])
def test_a_damaged_or_foreign_network_file_is_named(damage, tiny_checkpoint, tmp_path, capsys):
    import keras

    from tf_twogan.training import CheckpointError, load_generators

    checkpoint = copy_checkpoint(tiny_checkpoint, tmp_path / "ckpt")
    target = checkpoint / "g2.keras"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:5000])
        problem = "not a Keras .keras archive"
    elif damage == "empty":
        target.write_bytes(b"")
        problem = "not a Keras .keras archive"
    elif damage == "text":
        target.write_text("{}")
        problem = "not a Keras .keras archive"
    else:  # a valid, safe Keras file, but not a Generator
        inputs = keras.Input((4,))
        keras.Model(inputs, keras.layers.Dense(1)(inputs)).save(target)
        problem = "not a tf_twogan Generator"
    with pytest.raises(CheckpointError, match=problem):
        load_generators(checkpoint)
    ir = write_png(tmp_path / "ir.png", random_gray(32, 32))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(tmp_path / "f.png"),
                         "--checkpoint", str(checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(target), problem)


@pytest.mark.parametrize("edit, problem", [
    ({"train": {"epochs": 0}}, "train.epochs must be a positive integer, got 0"),
    ({"train": {"batch_size": -1}}, "train.batch_size must be a positive integer, got -1"),
    ({"train": {"learning_rate": -1e-4}}, "train.learning_rate must be > 0"),
    ({"generator": {"kernel_sizes": [3, 3, 4, 3]}}, "generator.kernel_sizes must be odd"),
    ({"generator": {"pad_mode": "wrap"}}, "generator.pad_mode must be 'reflect' or 'none'"),
    ({"train": {"dropout": 0.5}}, "unknown config.train key(s): dropout"),
    ({"surprise": 1}, "unknown config key(s): surprise"),
    ({"format_version": 2}, "config format_version 2 is not 1"),
    ({"train": "fast"}, "config.train must be an object"),
])
def test_out_of_range_or_unknown_config_values_are_named(edit, problem, tiny_checkpoint, tmp_path, capsys):
    data = preset("lite").to_dict()
    for key, value in edit.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    checkpoint = copy_checkpoint(tiny_checkpoint, tmp_path / "ckpt")
    (checkpoint / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as error:
        TwoGanConfig.from_json(checkpoint / "config.json")
    assert problem in str(error.value) and "config.json" in str(error.value)
    ir = write_png(tmp_path / "ir.png", random_gray(32, 32))
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(ir), "--out", str(tmp_path / "out" / "f.png"),
                         "--checkpoint", str(checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", str(checkpoint / "config.json"), problem)
    assert not (tmp_path / "out").exists()


def test_config_json_never_evaluates_code(tmp_path):
    """Strings that are code stay strings: the loader is ``json`` + dataclass validation, nothing else."""
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    for section, key in (("train", "precision"), ("generator", "input_mode"), ("train", "seed"), (None, "preset")):
        data = preset("lite").to_dict()
        if section is None:
            data[key] = payload
        else:
            data[section][key] = payload
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigError, match=key):
            TwoGanConfig.from_json(path)
    data = preset("lite").to_dict()
    data["generator"]["widths"] = payload  # a string where a tuple belongs: validated, not evaluated
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"generator.widths must be of type tuple\[int, \.\.\.\], got str"):
        TwoGanConfig.from_json(path)
    path.write_text("{'preset': 'lite'}")  # Python literal syntax is not JSON
    with pytest.raises(ConfigError, match="cannot read config"):
        TwoGanConfig.from_json(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- bad input: prepare

def test_prepare_names_every_kind_of_bad_input(tmp_path, capsys):
    ir, vis, out = tmp_path / "ir", tmp_path / "vis", tmp_path / "store.h5"
    ir.mkdir(), vis.mkdir()
    base = ["prepare", "--ir", str(ir), "--vis", str(vis), "--out", str(out), "--quiet"]
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "prepare", str(ir), "no image files")
    code, err = run_cli(["prepare", "--ir", str(tmp_path / "nowhere"), "--vis", str(vis), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "prepare", "nowhere", "no such folder")
    write_png(ir / "a.png", random_gray(140, 140)), write_png(vis / "a.png", random_gray(140, 141))
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "prepare", str(ir / "a.png"), str(vis / "a.png"), "sizes differ")
    write_png(vis / "a.png", random_gray(140, 140))
    write_png(ir / "b.png", random_gray(140, 140)), write_png(ir / "c.png", random_gray(140, 140)), write_png(vis / "d.png", random_gray(140, 140))
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "prepare", f"only in {ir}: b, c", f"only in {vis}: d")
    for name in ("b", "c", "d"):
        for folder in (ir, vis):
            (folder / f"{name}.png").unlink(missing_ok=True)
    nan, problem = bad_image("nan", tmp_path / "tiff")
    shutil.copy(nan, ir / "n.tif"), write_png(vis / "n.png", random_gray(32, 32))
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "prepare", str(ir / "n.tif"), problem)
    (ir / "n.tif").unlink(), (vis / "n.png").unlink()
    for flag, value in (("--stride", "0"), ("--patch", "-3")):
        code, err = run_cli(base + [flag, value], capsys)
        assert_one_line_error(code, err, "prepare", flag, "must be a positive integer")
    write_png(ir / "a.png", random_gray(1, 1)), write_png(vis / "a.png", random_gray(1, 1))
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "prepare", str(out), "no 128x128 patch fits")
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_verify_names_a_truncated_or_foreign_store(mini_store, tmp_path, capsys):
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(mini_store.read_bytes()[: mini_store.stat().st_size // 2])
    code, err = run_cli(["prepare", "--verify", str(truncated)], capsys)
    assert_one_line_error(code, err, "prepare", str(truncated))
    text = tmp_path / "text.h5"
    text.write_text("hello")
    code, err = run_cli(["prepare", "--verify", str(text)], capsys)
    assert_one_line_error(code, err, "prepare", str(text), "not a readable HDF5 patch store")


# ----------------------------------------------------------------------------- bad input: train

TRAIN_ARGS = ["--preset", "lite", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--quiet"]


def train_argv(store: Path, out: Path, *extra: str) -> list[str]:
    argv = ["train", "--store", str(store), "--out", str(out), *TRAIN_ARGS]
    for flag, value in zip(extra[::2], extra[1::2]):  # later flags win in argparse
        argv += [flag, value]
    return argv


@pytest.mark.parametrize("flag, value, problem", [
    ("--epochs", "0", "train.epochs must be a positive integer, got 0"),
    ("--batch-size", "-1", "train.batch_size must be a positive integer, got -1"),
    ("--steps-per-epoch", "0", "train.steps_per_epoch must be a positive integer or None, got 0"),
    ("--learning-rate", "0", "train.learning_rate must be > 0"),
    ("--learning-rate", "nan", "train.learning_rate must be > 0"),
    ("--seed", "-1", "train.seed must be in [0, 2**32)"),
    ("--batch-size", "100000", "fewer than one batch of 100000"),
])
def test_train_refuses_out_of_range_arguments_before_writing_anything(flag, value, problem, mini_store, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_cli(train_argv(mini_store, out, flag, value), capsys)
    assert_one_line_error(code, err, "train", problem)
    assert not out.exists(), "a refused run must not leave a run folder (it would block the corrected rerun)"


def test_train_refuses_unknown_choices_through_argparse(mini_store, tmp_path, capsys):
    for flag, value in (("--strategy", "tpu"), ("--preset", "huge"), ("--precision", "float16"), ("--epochs", "two")):
        with pytest.raises(SystemExit) as exit_info:
            main(train_argv(mini_store, tmp_path / "run", flag, value))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def store_variant(mini_store: Path, tmp_path: Path, variant: str) -> tuple[Path, str]:
    path = tmp_path / f"{variant}.h5"
    if variant == "missing":
        return path, "no such patch store"
    data = mini_store.read_bytes()
    if variant == "truncated":
        path.write_bytes(data[: len(data) // 3])
        return path, "not a readable HDF5 patch store (truncated or corrupt?"
    if variant == "not_hdf5":
        path.write_text("ir,vis\n")
        return path, "not a readable HDF5 patch store"
    path.write_bytes(data)
    with h5py.File(path, "a") as handle:
        if variant == "version":
            handle.attrs["format_version"] = 2
            return path, "store format version 2, this tf_twogan reads version 1"
        if variant == "format":
            handle.attrs["format"] = "something.else"
            return path, "not a tf_twogan patch store"
        if variant == "lengths":
            handle.attrs["patch_count"] = int(handle.attrs["patch_count"]) + 1
            return path, "disagree with patch_count"
    raise AssertionError(variant)


@pytest.mark.parametrize("variant", ["missing", "truncated", "not_hdf5", "version", "format", "lengths"])
def test_train_refuses_a_bad_store_naming_it(variant, mini_store, tmp_path, capsys):
    store, problem = store_variant(mini_store, tmp_path, variant)
    code, err = run_cli(train_argv(store, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "train", str(store), problem)
    assert not (tmp_path / "run").exists()
    with pytest.raises(StoreError, match="no such|truncated|not a|version|disagree"):
        PatchStore(store, ("ir", "vis"))


def test_train_refuses_a_store_of_another_patch_size(mini_store, tmp_path, capsys):
    code, err = run_cli(train_argv(mini_store, tmp_path / "run", "--method", "fusiongan"), capsys)
    assert_one_line_error(code, err, "train", str(mini_store), "patches are 128x128, expected 132x132")
    assert not (tmp_path / "run").exists()


def test_rerun_with_other_options_is_refused_in_one_line(mini_store, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "backup" / "gan1").mkdir(parents=True)
    preset("lite").replace(train={"epochs": 5}).to_json(out / "config.json")
    (out / "backup" / "gan1" / "training_metadata.json").write_text('{"epoch": 1}')  # an epoch was trained
    code, err = run_cli(train_argv(mini_store, out), capsys)
    assert_one_line_error(code, err, "train", str(out), "another config", "train.epochs")


# ----------------------------------------------------------------------------- bad input: evaluate

def test_evaluate_names_empty_unpaired_and_mismatched_folders(tmp_path, capsys):
    ir, vis, fused, out = (tmp_path / name for name in ("ir", "vis", "fused", "out"))
    for folder in (ir, vis, fused):
        folder.mkdir()
    base = ["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(fused), "--out", str(out), "--quiet"]
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "evaluate", "no image files")
    for name in ("a", "b"):
        write_png(ir / f"{name}.png", random_gray(32, 32)), write_png(vis / f"{name}.png", random_gray(32, 32, 1))
    write_png(fused / "a.png", random_gray(32, 33)), write_png(fused / "z.png", random_gray(32, 32))
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "evaluate", "pairs not found in both folders", f"z (not in {ir}, {vis})")
    (fused / "z.png").unlink()
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "evaluate", str(fused / "a.png"), "sizes differ")
    bad, problem = bad_image("truncated", tmp_path / "bad")
    shutil.copy(bad, fused / "a.png")
    code, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "evaluate", str(fused / "a.png"), problem)
    code, err = run_cli(base + ["--metrics", "EN,NOPE"], capsys)
    assert_one_line_error(code, err, "evaluate", "NOPE")
    assert not out.exists()


# ----------------------------------------------------------------------------- output confinement

ODD_NAMES = ["...", "..", ".hidden", "..secret", "a b", "ünïcödé_红外", "$(touch pwned)", "-rf", "..\\..\\up", "x.png"]


def test_fuse_folders_never_write_outside_out_whatever_the_names(tiny_checkpoint, tmp_path):
    from tf_twogan.inference import fuse

    ir, vis, out = tmp_path / "ir", tmp_path / "vis", tmp_path / "deep" / "out"
    for number, name in enumerate(ODD_NAMES):
        write_png(ir / f"{name}.png", random_gray(16, 16, number)), write_png(vis / f"{name}.png", random_gray(16, 16, 99 - number))
    out.mkdir(parents=True)
    outside = tmp_path / "deep" / "victim.png"
    outside.write_bytes(b"keep me")
    (out / "-rf.png").symlink_to(outside)  # a link already in --out is replaced, never written through
    before = files_under(tmp_path) - files_under(out)
    written = fuse(ir, vis, out, checkpoint=tiny_checkpoint)
    assert len(written) == len(ODD_NAMES)
    assert files_under(tmp_path) - files_under(out) == before
    assert outside.read_bytes() == b"keep me"
    assert all(path.resolve().parent == out.resolve() for path in written)
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{name}.png" for name in ODD_NAMES)
    assert not (out / "-rf.png").is_symlink() and iio.imread(out / "-rf.png").shape == (16, 16)
    assert not (REPO / "pwned").exists() and not Path("pwned").exists()


def test_evaluate_never_writes_outside_out_whatever_the_names(tmp_path, capsys):
    ir, vis, out = tmp_path / "ir", tmp_path / "vis", tmp_path / "out"
    fused = tmp_path / "ünï ..method"
    names = ["...", ".hidden", "ünïcödé_红外", "..\\up"]
    for number, name in enumerate(names):
        write_png(ir / f"{name}.png", random_gray(24, 24, number)), write_png(vis / f"{name}.png", random_gray(24, 24, 50 + number))
        write_png(fused / f"{name}.png", random_gray(24, 24, 90 + number))
    before = files_under(tmp_path)
    code, err = run_cli(["evaluate", "--ir", str(ir), "--vis", str(vis), "--fused", str(fused), "--out", str(out),
                         "--metrics", "EN,SD", "--quiet"], capsys)
    assert code == 0, err
    new = files_under(tmp_path) - before
    assert new and all(out in path.parents for path in new), new
    with (out / f"{fused.name}_metrics.csv").open(newline="") as handle:
        assert {row["image"] for row in csv.DictReader(handle)} == set(names)


# ----------------------------------------------------------------------------- crash safety: kill -9

CRASH_STEPS = 12  # batches per epoch: an epoch of the tiny networks takes long enough for the kill to land inside GAN 1


def crash_config() -> TwoGanConfig:
    """What :func:`crash_argv` resolves to: the lite chain at tiny widths, 3 epochs of CRASH_STEPS batches of 2, seed 7."""
    return tiny_training_config(epochs=3, steps_per_epoch=CRASH_STEPS, batch_size=2, seed=7)


def crash_argv(store: Path, out: Path) -> list[str]:
    """``twogan train`` of :func:`crash_config` through ``--config`` (a tiny-width file beside ``out``) and flags."""
    config = tiny_training_config().to_json(out.parent / "tiny.json")
    return ["train", "--store", str(store), "--out", str(out), "--config", str(config), "--epochs", "3",
            "--steps-per-epoch", str(CRASH_STEPS), "--batch-size", "2", "--seed", "7", "--quiet"]


# Runs ``twogan`` with os.replace patched to SIGKILL the process just before it renames a
# temporary file onto the final name given in TWOGAN_KILL_BEFORE: a kill at the worst
# instant of an atomic write (temporary complete, final name not yet there).
KILL_DRIVER = """
import os, signal, sys
name = os.environ["TWOGAN_KILL_BEFORE"]
real_replace = os.replace
def replace(source, target, *args, **kwargs):
    if os.path.basename(os.fspath(target)) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, target, *args, **kwargs)
os.replace = replace
from tf_twogan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def twogan_process(argv: list[str], kill_before: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    if kill_before is None:
        command = [sys.executable, "-m", "tf_twogan.cli", *argv]
    else:
        command = [sys.executable, "-c", KILL_DRIVER, *argv]
        env["TWOGAN_KILL_BEFORE"] = kill_before
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 400) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def assert_finished_run(run: Path, epochs: tuple[int, int, int] = (3, 3, 3)) -> None:
    """All networks under their final names and loadable, each of the ``epochs`` of GAN 1, 2, 3 logged once, nothing stray."""
    from tf_twogan.training import load_network

    for stage, count in zip(("gan1", "gan2", "gan3"), epochs):
        assert history_epochs(run / f"history_{stage}.csv") == list(range(count)), stage
    for name in ("g1", "g2", "g3", "d1", "d2", "d3"):
        load_network(run / f"{name}.keras")
    with PatchStore(run / "second_layer_store.h5", ("irv", "vir")):
        pass
    assert not (run / "backup").exists()
    assert not [path.name for path in run.glob(".*")], "stray temporary files"


def network_weights(path: Path) -> list[np.ndarray]:
    from tf_twogan.training import load_network

    return [w.numpy() for w in load_network(path).weights]


def test_kill_9_during_training_then_the_same_command_resumes_to_the_uninterrupted_result(mini_store, tiny_run, tmp_path):
    # GAN 3 alone on the session's finished first layer: the same train_pair, backup and
    # resume as GANs 1 and 2, for a third of the tracing.  The kill is sent once an epoch
    # is backed up (a kill before that only shows a rerun from scratch), and lands while
    # GAN 3 still trains: 6 epochs of 2 batches
    from tf_twogan.training import backup_epoch, train

    config = TINY_CHAIN.replace(second_layer={"epochs": 6})
    run, config_file = tmp_path / "run", config.to_json(tmp_path / "gan3.json")
    argv = gan3_train_argv(mini_store, run, config_file, tiny_run)
    process = twogan_process(argv)
    deadline = time.monotonic() + 300
    while not backup_epoch(run / "backup" / "gan3") and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    finished_gan3 = (run / "g3.keras").exists()
    process.send_signal(signal.SIGKILL)
    killed_at = backup_epoch(run / "backup" / "gan3")
    code, output = finish(process)
    assert code == -signal.SIGKILL, output
    assert not finished_gan3, "the kill should land while GAN 3 trains"
    assert 1 <= killed_at <= 5 and 1 <= len(history_epochs(run / "history_gan3.csv")) <= 6

    code, output = finish(twogan_process(argv))
    assert code == 0, output
    assert_finished_run(run, epochs=(1, 1, 6))

    # Tolerance: an uninterrupted run with the same seed (deterministic ops) in this process
    straight = train(mini_store, tmp_path / "straight", config, verbose=0, first_layer_from=tiny_run).root
    largest = 0.0
    for name in ("g3", "d3"):
        for resumed, uninterrupted in zip(network_weights(run / f"{name}.keras"), network_weights(straight / f"{name}.keras")):
            np.testing.assert_allclose(resumed, uninterrupted, rtol=0, atol=1e-6)
            largest = max(largest, float(np.abs(resumed - uninterrupted).max()))
    print(f"killed after {killed_at} backed-up epoch(s) of GAN 3; largest |resumed - uninterrupted| weight difference {largest:.3g}")


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["d1.keras", "second_layer_store.h5", "g3.keras"])
def test_kill_9_inside_an_atomic_write_then_rerun_finishes_cleanly(victim, mini_store, tmp_path):
    """SIGKILL just before the rename of a saved network or of the second-layer store."""
    run, argv = tmp_path / "run", crash_argv(mini_store, tmp_path / "run")
    code, output = finish(twogan_process(argv, kill_before=victim))
    assert code == -signal.SIGKILL, output
    assert not (run / victim).exists()
    assert list(run.glob(f".twogan-tmp.*.{victim}")), "the temporary should be complete but unrenamed"
    stage = {"d1.keras": "gan1", "second_layer_store.h5": None, "g3.keras": "gan3"}[victim]
    if stage is not None:  # killed between the networks' saves: the backup of the last epoch is still there
        assert (run / "backup" / stage).is_dir() and history_epochs(run / f"history_{stage}.csv") == [0, 1, 2]
    code, output = finish(twogan_process(argv))
    assert code == 0, output
    assert_finished_run(run)


def test_a_crash_inside_the_backup_save_leaves_the_previous_epoch_restorable(mini_store, tmp_path, monkeypatch):
    """Quick in-process variant of the kill tests: Keras' own BackupAndRestore rewrote its
    weights file in place, so a crash mid-save left a file that no longer opened."""
    import keras

    from tf_twogan.gan import GAN1
    from tf_twogan.training import backup_epoch, configure_runtime, open_run_folder, train_pair

    config = tiny_training_config(batch_size=2, epochs=3, steps_per_epoch=1, seed=2)
    run = open_run_folder(tmp_path / "run", config)
    real_save = keras.Model.save_weights
    saves = []

    def half_written_save(self, filepath, *args, **kwargs):
        saves.append(filepath)
        if len(saves) == 2:  # the backup of epoch 1: write half a file, then "die"
            real_save(self, filepath, *args, **kwargs)
            Path(filepath).write_bytes(Path(filepath).read_bytes()[:1000])
            raise RuntimeError("simulated crash while saving the backup")
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", half_written_save)
    configure_runtime(2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_pair(run, mini_store, config, GAN1, verbose=0)
    monkeypatch.setattr(keras.Model, "save_weights", real_save)
    backup = run.backup(GAN1)
    assert backup_epoch(backup) == 1
    assert sorted(path.name for path in backup.glob("*.h5")) == ["epoch1.weights.h5"]  # the half file is a temporary
    assert history_epochs(run.history(GAN1)) == [0, 1]  # row of epoch 1 written, its backup not: logged twice ...
    configure_runtime(2)
    train_pair(run, mini_store, config, GAN1, verbose=0)
    assert history_epochs(run.history(GAN1)) == [0, 1, 2]  # ... and the repeat dropped on resume
    assert not backup.exists() and run.finished(GAN1)
