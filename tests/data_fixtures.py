"""Shared test data: the real datasets in ../shared/data, small stores cut from them, run histories."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TNO = DATA / "tno"
MINI_PAIRS = ["2", "24"]  # two small TNO training pairs (595x328 and 620x450)


def tno_split() -> dict:
    return json.loads((TNO / "split.json").read_text())


def history_epochs(path: Path) -> list[int]:
    """Epochs logged so far in a run's history CSV, parsed from one snapshot of the file.

    Also polled while a trainer appends: csv.DictReader on the open file would ask it for
    lines again after an EOF on the still-empty file and take the first data row for the
    header (seen in CI as KeyError 'epoch').
    """
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        snapshot = handle.read()
    return [int(row["epoch"]) for row in csv.DictReader(io.StringIO(snapshot))]


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
