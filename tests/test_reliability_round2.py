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

from data_fixtures import history_epochs, mini_split, mini_store  # noqa: F401 (fixtures)
from test_reliability import assert_one_line_error, files_under, gray, run_cli, train_argv, write_png

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
        wait_for(lambda: history_epochs(run / "history_gan1.csv"), first)  # the first one is training
        code, err = run_cli(argv, capsys)
        assert_one_line_error(code, err, "train", str(run), f"pid {first.pid}", "in use")
        assert first.poll() is None, "the first trainer must be unharmed"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    # the killed holder's lock file is stale: the next lock takes it over
    from tf_twogan.locking import FolderLock

    lock_file = run / "twogan.lock"
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

def test_train_keeps_user_files_and_live_temporaries_and_removes_only_its_dead_temporaries(mini_store, tmp_path, capsys):
    run = tmp_path / "u"
    run.mkdir()
    user = {run / ".notes.tmp.txt": "x\n", run / ".a.b1c2.tmp.png": "mine\n", run / "notes.txt": "keep\n"}
    for path, text in user.items():
        path.write_text(text)
    dead = run / f".twogan-tmp.{dead_pid(tmp_path)}.abc123de.g1.keras"
    live = run / f".twogan-tmp.{os.getpid()}.abc123de.g2.keras"  # a running process's write in flight
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    code, err = run_cli(train_argv(mini_store, run, *QUICK_TRAIN), capsys)
    assert code == 0, err
    assert {path: path.read_text() for path in user} == user
    assert not dead.exists() and live.exists()
    assert not (run / "twogan.lock").exists()


def test_a_run_that_failed_before_its_first_epoch_does_not_block_the_corrected_rerun(mini_store, tmp_path, capsys):
    """A Ctrl-C (or any failure) before the first epoch leaves config.json and empty logs, nothing trained."""
    from tf_twogan.config import preset

    run = tmp_path / "run"
    (run / "logs" / "gan1").mkdir(parents=True)
    preset("lite").replace(train={"epochs": 40, "batch_size": 100000}).to_json(run / "config.json")
    code, err = run_cli(train_argv(mini_store, run, *QUICK_TRAIN), capsys)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 1
    assert history_epochs(run / "history_gan3.csv") == [0]
