"""The full-width checkpoints: they load safely, are the presets they claim, and their committed TNO rows recompute.

Fusing at the paper's widths costs about 7 s of CPU per TNO test pair, so the default
suite recomputes one pair per checkpoint exactly (pair 5, the smallest) against
``results/paper_width/tno_test_pairs_<name>.csv``; the whole 10-pair mean row of
``results/paper_width/tno_metrics.csv`` is recomputed under ``-m slow``.
"""
import numpy as np
import pytest

from helpers import REPO, TNO, read_csv
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main
from tf_twogan.config import TwoGanConfig, preset
from tf_twogan.images import split_names

pytestmark = pytest.mark.needs_data("tno")

RESULTS = REPO / "results" / "paper_width"
FULL_WIDTH = ["paper", "paper_sharp"]
METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]


def linked_pairs(names: list[str], out):
    """``out/{ir,vis}`` holding links to the named TNO pairs."""
    for kind in ("ir", "vis"):
        (out / kind).mkdir(parents=True)
        for path in (TNO / kind).iterdir():
            if path.stem in names:
                (out / kind / path.name).symlink_to(path)
    return out


def fused_scores(checkpoint, pairs, tmp_path) -> list[dict[str, str]]:
    """Per-pair rows of ``twogan fuse`` + ``twogan evaluate`` (the paper's eight and TR)."""
    fused = tmp_path / "fused"
    assert main(["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused),
                 "--checkpoint", str(checkpoint), "--quiet"]) == 0
    assert main(["evaluate", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--fused", str(fused),
                 "--out", str(tmp_path / "eval"), "--metrics", ",".join(METRICS), "--quiet"]) == 0
    return tmp_path / "eval"


@pytest.mark.parametrize("name", FULL_WIDTH)
def test_the_full_width_checkpoint_is_its_preset_at_the_papers_widths(name):
    config = TwoGanConfig.from_json(checkpoint_dir(name) / "config.json")
    assert config.generator.widths == (256, 128, 64, 32) and config.discriminator.widths == (32, 64, 128, 256)
    assert config.replace(train=preset(config.preset).train) == preset(config.preset)
    from tf_twogan.networks_io import load_generators

    g1, g2, g3 = load_generators(checkpoint_dir(name))  # safe_mode=True
    # 3x3 convs 2->256->128->64->32 with biases, 1x1 conv 32->1, BatchNorm scale and offset on the four
    trainable = (9 * 2 * 256 + 256) + (9 * 256 * 128 + 128) + (9 * 128 * 64 + 64) + (9 * 64 * 32 + 32) + 33 + 2 * 480
    assert trainable == 393_153
    assert sum(int(np.prod(w.shape)) for w in g3.trainable_weights) == trainable


@pytest.mark.parametrize("name", FULL_WIDTH)
def test_one_committed_tno_pair_recomputes_exactly(name, tmp_path):
    expected = {row["image"]: row for row in read_csv(RESULTS / f"tno_test_pairs_{name}.csv")}["5"]
    (measured,) = read_csv(fused_scores(checkpoint_dir(name), linked_pairs(["5"], tmp_path / "pairs"), tmp_path) / "fused_metrics.csv")
    np.testing.assert_allclose([float(measured[m]) for m in METRICS], [float(expected[m]) for m in METRICS], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_WIDTH)
def test_the_committed_tno_mean_row_recomputes(name, tmp_path):
    test_pairs = split_names("tno", "test")
    rows = {row["method"]: row for row in read_csv(RESULTS / "tno_metrics.csv")}
    expected = rows[f"{name} (full width)"]
    (measured,) = read_csv(fused_scores(checkpoint_dir(name), linked_pairs(test_pairs, tmp_path / "pairs"), tmp_path) / "metrics_mean.csv")
    np.testing.assert_allclose([float(measured[m]) for m in METRICS], [float(expected[m]) for m in METRICS], rtol=1e-5)
