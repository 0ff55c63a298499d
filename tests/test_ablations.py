"""results/ablations.py: each variant's config reaches its run, and the table has its row."""
import sys

import pytest

from helpers import REPO, read_csv
from tf_twogan.config import TwoGanConfig

RESULTS = REPO / "results"


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


def test_variants_that_change_only_gan3_reuse_the_trained_first_layer_of_the_baseline(ablations, tmp_path):
    def config(variant):
        return ablations.variant_config(ablations.VARIANTS[variant], 2, 100)

    baseline = tmp_path / ablations.folder_name(ablations.BASELINE)
    baseline.mkdir()
    config(ablations.BASELINE).to_json(baseline / "config.json")
    (baseline / "g1.keras").write_bytes(b"")
    assert ablations.first_layer_source(config("zeta 10"), tmp_path) is None  # G2 not trained yet
    (baseline / "g2.keras").write_bytes(b"")
    reusing = [variant for variant in ablations.VARIANTS if ablations.first_layer_source(config(variant), tmp_path) == baseline]
    assert reusing == ["G3 swapped", "zeta 10", "zeta 1000"]
    assert ablations.first_layer_source(config("zeta 10").replace(train={"epochs": 3}), tmp_path) is None


def test_a_tiny_ablation_trains_fuses_and_tabulates(ablations, mini_store, tmp_path, monkeypatch):
    table = tmp_path / "table"
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--store", str(mini_store), "--work", str(tmp_path / "work"),
                                      "--epochs", "1", "--steps-per-epoch", "1", "--variants", "zeta 10", "--out", str(table), "--test-pairs", "2"])
    ablations.main()
    run = TwoGanConfig.from_json(tmp_path / "work" / "zeta_10" / "config.json")
    assert run.loss.second_layer_content_weight == 10.0 and run.train.steps_per_epoch == 1
    assert len(list((tmp_path / "work" / "fused" / "zeta 10").glob("*.png"))) == 2
    rows = read_csv(table.with_suffix(".csv"))
    assert [row["method"] for row in rows] == ["zeta 10"] and all(float(rows[0][m]) >= 0 for m in ("EN", "SD", "QABF"))
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--variants", "lambda 3"])
    with pytest.raises(SystemExit):
        ablations.main()
