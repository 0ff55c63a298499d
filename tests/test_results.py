"""The committed TNO results recompute from the committed checkpoints with the public CLI.

The contract for ``results/tno_test_metrics.csv``: its ``two-layer-gan (shipped)`` row (the
default ``sharp`` checkpoint) must come out again from ``twogan fuse`` + ``twogan evaluate``
on the 10 TNO test pairs of the shipped split ``tno``; the ``lite`` and FusionGAN rows likewise from
their shipped checkpoints, and the lambda = 100 chain's row (``results/lambda100_chain``)
from its committed generators.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, TNO, history_epochs, read_csv
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main
from tf_twogan.images import split_names

pytestmark = pytest.mark.needs_data("tno")


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
    names = split_names("tno", "test")
    assert len(names) == 10
    return reproduce.linked_subset(TNO, names, tmp_path_factory.mktemp("tno_test"))


def committed_row(table: Path, method: str) -> dict[str, float]:
    rows = {row["method"]: row for row in read_csv(table)}
    return {name: float(value) for name, value in rows[method].items() if name != "method"}


def evaluated_row(tno_test: Path, fused: Path, out: Path) -> dict[str, float]:
    assert main(["evaluate", "--ir", str(tno_test / "ir"), "--vis", str(tno_test / "vis"), "--fused", str(fused),
                 "--out", str(out), "--quiet"]) == 0
    (row,) = read_csv(out / "metrics_mean.csv")
    return {name: float(value) for name, value in row.items() if name != "method"}


RESULTS = REPO / "results"
LAMBDA100 = RESULTS / "lambda100_chain"


@pytest.mark.parametrize("table, method, checkpoint", [
    (RESULTS / "tno_test_metrics.csv", "two-layer-gan (shipped)", None),
    (RESULTS / "tno_test_metrics.csv", "two-layer-gan (lite)", checkpoint_dir("lite")),
    (RESULTS / "tno_test_metrics.csv", "fusiongan (shipped baseline)", checkpoint_dir("fusiongan_lite")),
    (LAMBDA100 / "tno_test_metrics.csv", "two-layer-gan (lambda 100)", LAMBDA100),
], ids=["shipped", "lite", "fusiongan", "lambda100"])
def test_the_committed_tno_row_recomputes_from_its_checkpoint(reproduce, tno_test, tmp_path, table, method, checkpoint):
    fused = tmp_path / "fused"
    arguments = ["fuse", "--ir", str(tno_test / "ir"), "--vis", str(tno_test / "vis"), "--out", str(fused)]
    if checkpoint:
        arguments += ["--checkpoint", str(checkpoint)]
    assert main(arguments) == 0
    assert len(list(fused.glob("*.png"))) == 10
    expected = committed_row(table, method)
    measured = evaluated_row(tno_test, fused, tmp_path / "eval")
    assert list(measured) == list(expected) == reproduce.METRICS
    np.testing.assert_allclose([measured[m] for m in expected], list(expected.values()), rtol=1e-6, atol=1e-8)


def test_the_lambda100_chain_is_the_lite_preset_with_lambda_100_only():
    from tf_twogan.config import TwoGanConfig, preset

    expected = preset("lite").replace(loss={"first_layer_content_weight": 100.0})
    assert TwoGanConfig.from_json(LAMBDA100 / "config.json") == expected
    for stage in ("gan1", "gan2", "gan3"):
        assert history_epochs(LAMBDA100 / f"history_{stage}.csv") == list(range(expected.train.epochs)), stage
