"""The ``twogan`` command as a user meets it: quiet by default, --version, defaults, and
messages that say what the user did wrong and what to do (issue 16)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_reliability import assert_one_line_error, files_under, run_cli, write_png
from helpers import DATA, cannot_run
from tf_twogan.cli import build_parser, package_version

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tf_twogan" / "samples"


def user_environment(**extra: str) -> dict[str, str]:
    """This process's environment as a user's shell would have it: no TensorFlow log settings, this checkout importable."""
    environment = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "TWOGAN_VERBOSE")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return {**environment, **extra}


def twogan(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``twogan argv`` in a fresh interpreter (the way a user starts it)."""
    return subprocess.run([sys.executable, "-m", "tf_twogan.cli", *argv], capture_output=True, text=True,
                          env=user_environment(**(env or {})), timeout=300)


def sample_pair_argv(out: Path, checkpoint: Path) -> list[str]:
    return ["fuse", "--ir", str(SAMPLES / "ir" / "tno_21.png"), "--vis", str(SAMPLES / "vis" / "tno_21.png"),
            "--out", str(out), "--checkpoint", str(checkpoint)]


def test_fuse_prints_no_tensorflow_log_line_by_default_and_all_of_them_with_verbose(tiny_checkpoint, tmp_path):
    quiet = twogan(*sample_pair_argv(tmp_path / "quiet.png", tiny_checkpoint))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.strip() == str(tmp_path / "quiet.png")
    verbose = twogan("--verbose", *sample_pair_argv(tmp_path / "verbose.png", tiny_checkpoint))
    by_env = twogan(*sample_pair_argv(tmp_path / "env.png", tiny_checkpoint), env={"TWOGAN_VERBOSE": "1"})
    for run in (verbose, by_env):
        assert run.returncode == 0, run.stderr
        # TensorFlow announces oneDNN on every x86 CPU at import
        assert "oneDNN custom operations" in run.stderr


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("tf_twogan")
    except PackageNotFoundError:
        cannot_run("tf_twogan is not installed (run from a source tree): `python3 -m pip install -e .`")
    assert capsys.readouterr().out.strip() == f"twogan {installed}" == f"twogan {package_version()}"


def test_train_without_a_preset_uses_the_default_checkpoints_preset_and_the_help_says_so(capsys):
    from tf_twogan.checkpoints import checkpoint_dir
    from tf_twogan.cli import resolve_config
    from tf_twogan.config import TwoGanConfig, preset

    shipped = TwoGanConfig.from_json(checkpoint_dir() / "config.json").preset  # the model `twogan fuse` uses
    assert shipped == "sharp"
    assert resolve_config(build_parser().parse_args(["train", "--store", "s.h5", "--out", "run"])) == preset(shipped)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "default: the shipped default model's, today sharp" in " ".join(capsys.readouterr().out.split())


def test_prepare_usage_marks_the_required_flags_and_verify_excludes_them(capsys, tmp_path):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prepare", "--help"])
    assert "(--ir IR --vis VIS --out OUT | --verify STORE)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["prepare", "--verify", "a.h5", "--ir", "ir"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    code, err = run_cli(["prepare", "--ir", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "prepare", "--vis, --out required with --ir")


def test_export_help_and_error_say_fusiongan_runs_cannot_be_exported(capsys, tmp_path):
    from tf_twogan.checkpoints import checkpoint_dir

    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "--help"])
    assert "FusionGAN runs" in " ".join(capsys.readouterr().out.split())
    code, err = run_cli(["export", "--checkpoint", str(checkpoint_dir("fusiongan_lite")), "--out", str(tmp_path / "m" / "1")],
                        capsys)
    assert_one_line_error(code, err, "export", "fusiongan_lite", "is a FusionGAN run", "cannot be exported")
    assert not (tmp_path / "m").exists()


def test_fuse_folders_into_an_image_name_says_folder_inputs_need_an_output_folder(tiny_checkpoint, tmp_path, capsys):
    ir = SAMPLES / "ir"
    code, err = run_cli(["fuse", "--ir", str(ir), "--vis", str(SAMPLES / "vis"), "--out", str(tmp_path / "m5.png"),
                         "--checkpoint", str(tiny_checkpoint)], capsys)
    assert_one_line_error(code, err, "fuse", "m5.png", "folder inputs need an output folder")
    assert files_under(tmp_path) == set()


def test_fuse_one_pair_into_a_folder_name_says_a_single_pair_needs_a_file_name(tiny_checkpoint, tmp_path, capsys):
    argv = sample_pair_argv(tmp_path / "outdir", tiny_checkpoint)
    argv[argv.index("--out") + 1] += "/"
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "fuse", "outdir", "a single pair needs an output file name")
    assert files_under(tmp_path) == set() and not (tmp_path / "outdir").exists()


def test_a_text_file_named_png_gets_our_message_not_imageio_advice(tiny_checkpoint, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not an image\n")
    argv = sample_pair_argv(tmp_path / "fused.png", tiny_checkpoint)
    argv[argv.index("--vis") + 1] = str(text)
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "fuse", "notes.png", "cannot be read as an image")
    assert "pip" not in err and "imageio" not in err
    assert not (tmp_path / "fused.png").exists()


def test_evaluate_with_a_fused_file_says_it_is_a_file_not_a_folder(tmp_path, capsys):
    fused = write_png(tmp_path / "fused.png", np.zeros((16, 16), np.uint8))
    code, err = run_cli(["evaluate", "--ir", str(SAMPLES / "ir"), "--vis", str(SAMPLES / "vis"), "--fused", str(fused),
                         "--out", str(tmp_path / "eval")], capsys)
    assert_one_line_error(code, err, "evaluate", "fused.png", "is a file, not a folder of fused images")
    assert not (tmp_path / "eval").exists()


def test_a_bare_checkpoint_name_gets_a_hint_to_the_shipped_checkpoints(tmp_path, capsys, monkeypatch):
    from tf_twogan.checkpoints import checkpoint_dir

    monkeypatch.chdir(tmp_path)
    code, err = run_cli(sample_pair_argv(tmp_path / "fused.png", Path("fusiongan_lite")), capsys)
    shipped = checkpoint_dir().parent
    assert_one_line_error(code, err, "fuse", "fusiongan_lite: no such checkpoint folder",
                          f"did you mean the shipped checkpoint {shipped / 'fusiongan_lite'}")
    code, err = run_cli(sample_pair_argv(tmp_path / "fused.png", Path("nonesuch")), capsys)
    assert_one_line_error(code, err, "fuse", "nonesuch", f"shipped checkpoints: fusiongan_lite, lite, paper, paper_sharp, sharp in {shipped}")


def test_progress_bars_fall_back_to_text_without_notebook_widgets():
    import importlib.util

    from tqdm.std import tqdm as text_tqdm

    from tf_twogan.console import tqdm

    if importlib.util.find_spec("ipywidgets") is not None:
        pytest.skip("ipywidgets is installed: the notebook bar is used")
    assert type(tqdm(range(3), disable=True)) is text_tqdm


TNO, ROADSCENE = DATA / "tno", DATA / "roadscene"


@pytest.mark.needs_data("tno")
def test_fuse_and_evaluate_take_only_the_pairs_of_a_split_subset(tiny_checkpoint, tmp_path, capsys):
    import csv
    import json

    from tf_twogan.datasets import split_file

    split = split_file("tno")  # the shipped split: by name here, by file name below
    test_pairs = json.loads(split.read_text())["test"]
    selection = ["--split", "tno", "--subset", "test"]
    code, err = run_cli(["fuse", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--out", str(tmp_path / "fused"),
                         "--checkpoint", str(tiny_checkpoint), "--quiet", *selection], capsys)
    assert code == 0, err
    assert sorted(path.stem for path in (tmp_path / "fused").iterdir()) == sorted(test_pairs)
    code, err = run_cli(["evaluate", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--fused", str(tmp_path / "fused"),
                         "--out", str(tmp_path / "eval"), "--metrics", "EN", "--quiet", *selection], capsys)
    assert code == 0, err
    with open(tmp_path / "eval" / "fused_metrics.csv") as table:
        assert sorted(row["image"] for row in csv.DictReader(table)) == sorted(test_pairs)
    code, err = run_cli(["fuse", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--out", str(tmp_path / "other"),
                         "--checkpoint", str(tiny_checkpoint), "--split", str(split), "--subset", "validation"], capsys)
    assert_one_line_error(code, err, "fuse", "tno.json", "no list of pairs named 'validation'", "subsets: test, train")
    assert not (tmp_path / "other").exists()


def test_resize_box_is_the_block_mean_for_an_integer_factor():
    from tf_twogan.images import resize_box

    image = np.random.default_rng(0).integers(0, 256, (12, 18, 3), dtype=np.uint8)
    blocks = image.reshape(4, 3, 6, 3, 3).astype(np.float64).mean(axis=(1, 3))
    # Pillow sums in fixed point: within one grey level of the exact block mean
    assert np.abs(resize_box(image, 4, 6).astype(np.float64) - blocks).max() <= 1.0


@pytest.mark.needs_data("roadscene")
def test_resize_vis_fuses_a_roadscene_pair_of_two_sizes_on_the_infrared_grid(tiny_checkpoint, tmp_path, capsys):
    from tf_twogan.images import read_image, resize_box
    from tf_twogan.inference import Fuser

    ir_path, vis_path = ROADSCENE / "ir" / "FLIR_00006.jpg", ROADSCENE / "vis" / "FLIR_00006.jpg"
    argv = ["fuse", "--ir", str(ir_path), "--vis", str(vis_path), "--out", str(tmp_path / "fused.png"),
            "--checkpoint", str(tiny_checkpoint)]
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "fuse", "differ in size", "add --resize-vis")
    code, err = run_cli([*argv, "--resize-vis"], capsys)
    assert code == 0, err
    ir, vis = read_image(ir_path), read_image(vis_path)
    expected = Fuser(tiny_checkpoint).fuse_arrays(ir, resize_box(vis, *ir.shape[:2]))
    np.testing.assert_array_equal(read_image(tmp_path / "fused.png"), expected)
    assert expected.shape == ir.shape[:2] + (3,)


RUN_WITH_EXIT_HANDLER = """
import atexit, sys
atexit.register(lambda: print("EXIT HANDLER RAN"))
sys.argv = ["twogan", *sys.argv[1:]]
from tf_twogan.cli import run
run()
"""


def run_console_entry(*argv: str) -> subprocess.CompletedProcess:
    """The console entry ``run()`` in a fresh interpreter that registered an exit handler of its own."""
    return subprocess.run([sys.executable, "-c", RUN_WITH_EXIT_HANDLER, *argv], capture_output=True, text=True,
                          env=user_environment(), timeout=300)


def test_the_console_entry_ends_an_inference_command_quickly_with_its_output_complete_and_its_status(tiny_checkpoint, tmp_path):
    fused = run_console_entry(*sample_pair_argv(tmp_path / "fused.png", tiny_checkpoint))
    assert fused.returncode == 0, fused.stderr
    assert fused.stdout.strip() == str(tmp_path / "fused.png")  # printed before the quick exit
    assert "EXIT HANDLER RAN" not in fused.stdout  # the interpreter's clean-up was skipped
    from tf_twogan.images import read_image
    from tf_twogan.inference import Fuser

    expected = Fuser(tiny_checkpoint).fuse_arrays(read_image(SAMPLES / "ir" / "tno_21.png"), read_image(SAMPLES / "vis" / "tno_21.png"))
    np.testing.assert_array_equal(read_image(tmp_path / "fused.png"), expected)
    refused = run_console_entry(*sample_pair_argv(tmp_path / "fused.png", tmp_path / "no_such_checkpoint"))
    assert refused.returncode == 2 and "no such checkpoint folder" in refused.stderr, refused.stderr


def test_the_console_entry_exits_normally_from_train_which_keeps_its_clean_up(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"not a store")
    train = run_console_entry("train", "--store", str(tmp_path / "bad.h5"), "--out", str(tmp_path / "run"))
    assert train.returncode == 2, train.stderr  # TensorFlow was loaded (train loads it before reading the store)
    assert "EXIT HANDLER RAN" in train.stdout


def test_progress_bars_redraw_on_a_terminal_and_write_a_log_only_its_start_and_end():
    """A log piped to a file must not fill with carriage-return redraws, yet keeps the final count and
    rate; a terminal gets a redraw per item here (tqdm's own pacing on a fast loop may skip some)."""
    import io
    import os
    import time

    from tf_twogan.console import tqdm

    log = io.StringIO()
    for _ in tqdm(range(400), desc="fuse", unit="frame", file=log):
        time.sleep(0.001)
    assert log.getvalue().count("\r") == 2 and "400/400" in log.getvalue() and "frame/s" in log.getvalue()
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        for _ in tqdm(range(400), desc="fuse", unit="frame", file=terminal):
            time.sleep(0.001)
    chunks = []
    while True:  # everything written, in as many reads as the pty hands it out; EIO once drained
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    drawn = b"".join(chunks).decode()
    assert drawn.count("\r") > 2 and "400/400" in drawn
