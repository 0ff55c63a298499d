"""The committed TNO results table recomputes from the shipped checkpoints with the public CLI.

The issue's contract for ``results/tno_test_metrics.csv``: its ``two-layer-gan (shipped)``
row must come out again from ``twogan fuse`` + ``twogan evaluate`` on the 10 TNO test
pairs of ``split.json``; the FusionGAN row likewise from its shipped baseline.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main

REPO = Path(__file__).resolve().parents[1]
TNO = REPO.parent / "shared" / "data" / "tno"
pytestmark = pytest.mark.skipif(not TNO.is_dir(), reason="needs ../shared/data/tno")


@pytest.fixture(scope="module")
def reproduce():
    sys.path.insert(0, str(REPO / "results"))
    try:
        import reproduce
    finally:
        sys.path.remove(str(REPO / "results"))
    return reproduce


@pytest.fixture(scope="module")
def tno_test(reproduce, tmp_path_factory):
    names = json.loads((TNO / "split.json").read_text())["test"]
    assert len(names) == 10
    return reproduce.linked_subset(TNO, names, tmp_path_factory.mktemp("tno_test"))


def committed_row(method: str) -> dict[str, float]:
    rows = {row["method"]: row for row in csv.DictReader((REPO / "results" / "tno_test_metrics.csv").open())}
    return {name: float(value) for name, value in rows[method].items() if name != "method"}


def evaluated_row(tno_test: Path, fused: Path, out: Path) -> dict[str, float]:
    assert main(["evaluate", "--ir", str(tno_test / "ir"), "--vis", str(tno_test / "vis"), "--fused", str(fused),
                 "--out", str(out), "--quiet"]) == 0
    (row,) = csv.DictReader((out / "metrics_mean.csv").open())
    return {name: float(value) for name, value in row.items() if name != "method"}


@pytest.mark.parametrize("method, checkpoint", [("OURS", None), ("FUSIONGAN", "fusiongan_lite")])
def test_the_committed_tno_row_recomputes_from_the_shipped_checkpoint(reproduce, tno_test, tmp_path, method, checkpoint):
    fused = tmp_path / "fused"
    arguments = ["fuse", "--ir", str(tno_test / "ir"), "--vis", str(tno_test / "vis"), "--out", str(fused)]
    if checkpoint:
        arguments += ["--checkpoint", str(checkpoint_dir(checkpoint))]
    assert main(arguments) == 0
    assert len(list(fused.glob("*.png"))) == 10
    expected = committed_row(getattr(reproduce, method))
    measured = evaluated_row(tno_test, fused, tmp_path / "eval")
    assert list(measured) == list(expected) == reproduce.METRICS
    np.testing.assert_allclose([measured[m] for m in expected], list(expected.values()), rtol=1e-6, atol=1e-8)
