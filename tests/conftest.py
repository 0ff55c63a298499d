"""All shared fixtures: small real stores cut from TNO, a tiny random-weight checkpoint folder
and one tiny trained run that every test process shares; the ``needs_data`` marker.

The checkpoint's networks are narrow (widths 8, 8, 4, 4) so tests run in seconds,
with weights drawn from a fixed seed and BatchNorm moving statistics perturbed away
from (0, 1) so that a path that ignored them, or used batch statistics, would differ.
Plain helpers (constants, readers, random images) are in helpers.py.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from helpers import MINI_PAIRS, TINY_CHAIN, TNO, make_checkpoint, need_dataset

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist already runs one test process per core: evaluation threads on top of
    # that only add switching (test_results + test_evaluate on two workers: 37.2 and
    # 38.9 s with two threads, 36.2 and 37.2 s with one); subprocesses and notebook
    # kernels inherit the setting
    os.environ.setdefault("TWOGAN_EVALUATE_WORKERS", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data(*names): the test reads these datasets of the data root; a missing one "
                            "skips it naming the fetch command, or fails it where data is expected (helpers.cannot_run)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_data"):
        for name in mark.args:
            need_dataset(name)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight checkpoint folder (tiny widths), built once per test session."""
    return make_checkpoint(tmp_path_factory.mktemp("tiny_checkpoint"))


@pytest.fixture(scope="session")
def mini_split(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split") / "mini_split.json"
    path.write_text(json.dumps({"train": MINI_PAIRS, "test": ["1"]}))
    return path


@pytest.fixture(scope="session")
def mini_store(tmp_path_factory, mini_split) -> Path:
    """A real store of two TNO training pairs, 128x128 patches at stride 48 (127 pairs)."""
    from tf_twogan.store import prepare_store

    need_dataset("tno")
    out = tmp_path_factory.mktemp("store") / "mini.h5"
    return prepare_store(TNO / "ir", TNO / "vis", out, split=mini_split, subset="train", stride=48, progress=False)


def shared_temp(tmp_path_factory) -> Path:
    """The session's temporary root that all pytest-xdist workers see (their own roots are its children)."""
    own = tmp_path_factory.getbasetemp()
    return own.parent if os.environ.get("PYTEST_XDIST_WORKER") else own


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mini_store) -> Path:
    """A finished run of the whole chain (``TINY_CHAIN``) made by ``twogan train --config``; read it, never write it.

    Training it costs about 10 s of graph tracing, so it is made once per test
    session: the first pytest-xdist worker to ask trains it under a file lock, the
    others wait for the lock and reuse it.
    """
    from tf_twogan.cli import main

    root = shared_temp(tmp_path_factory)
    run, config, done = root / "tiny_run", root / "tiny_run.json", root / "tiny_run.done"
    with (root / "tiny_run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            TINY_CHAIN.to_json(config)
            assert main(["train", "--store", str(mini_store), "--out", str(run), "--config", str(config), "--quiet"]) == 0
            done.touch()
    return run
