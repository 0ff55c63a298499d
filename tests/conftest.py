"""All shared fixtures: small real stores cut from TNO, and a tiny random-weight checkpoint folder.

The checkpoint's networks are narrow (widths 8, 8, 4, 4) so tests run in seconds,
with weights drawn from a fixed seed and BatchNorm moving statistics perturbed away
from (0, 1) so that a path that ignored them, or used batch statistics, would differ.
Plain helpers (constants, readers, random images) are in helpers.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import MINI_PAIRS, TNO, make_checkpoint


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

    out = tmp_path_factory.mktemp("store") / "mini.h5"
    return prepare_store(TNO / "ir", TNO / "vis", out, split=mini_split, subset="train", stride=48, progress=False)
