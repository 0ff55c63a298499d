"""results/ablations.py: each variant's config reaches its run, and the table has its row."""
import csv
import sys
from pathlib import Path

import pytest

from data_fixtures import mini_split, mini_store  # noqa: F401 (fixtures)
from tf_twogan.config import TwoGanConfig

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture
def ablations(monkeypatch):
    monkeypatch.syspath_prepend(str(RESULTS))
    import ablations

    return ablations


def test_variant_configs_change_only_their_field(ablations):
    base = ablations.variant_config({}, 2, 100)
    assert (base.preset, base.train.epochs, base.train.steps_per_epoch, base.train.seed) == ("lite", 2, 100, 0)
    assert ablations.variant_config(ablations.VARIANTS["single-input"], 2, 100) == base.replace(generator={"input_mode": "single"})
    assert ablations.variant_config(ablations.VARIANTS["lambda 100"], 2, 100).loss.first_layer_content_weight == 100.0
    assert ablations.variant_config(ablations.VARIANTS["G3 swapped"], 2, 100).train.swap_second_layer


def test_a_tiny_ablation_trains_fuses_and_tabulates(ablations, mini_store, tmp_path, monkeypatch):
    table = tmp_path / "table"
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--store", str(mini_store), "--work", str(tmp_path / "work"),
                                      "--epochs", "1", "--steps-per-epoch", "1", "--variants", "zeta 10", "--out", str(table)])
    ablations.main()
    run = TwoGanConfig.from_json(tmp_path / "work" / "zeta_10" / "config.json")
    assert run.loss.second_layer_content_weight == 10.0 and run.train.steps_per_epoch == 1
    assert len(list((tmp_path / "work" / "fused" / "zeta 10").glob("*.png"))) == 10
    rows = list(csv.DictReader(table.with_suffix(".csv").open()))
    assert [row["method"] for row in rows] == ["zeta 10"] and all(float(rows[0][m]) >= 0 for m in ("EN", "SD", "QABF"))
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--variants", "lambda 3"])
    with pytest.raises(SystemExit):
        ablations.main()
