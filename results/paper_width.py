"""Score two-layer checkpoints on TNO test, RoadScene and VIFB with the public CLI, one row each.

For each ``--checkpoint NAME=DIR`` and each dataset, ``twogan fuse`` writes the fused
images and ``twogan evaluate`` scores them (the paper's eight metrics and TR, gray,
MATLAB conventions) into ``OUT/<dataset>/<NAME>/metrics/`` (``metrics_mean.csv`` and
the per-pair ``fused_metrics.csv``).  The pairs are those of ``results/reproduce.py``:
the 10 TNO test pairs of ``split.json``, the 221 RoadScene pairs with each visible
frame box-resized onto its infrared frame, the 21 VIFB pairs.  A dataset already
scored for a name is not scored again (delete its folder to redo it).

Usage (from the repository root):
  python results/paper_width.py --checkpoint paper=checkpoints/paper \\
      --checkpoint paper_sharp=checkpoints/paper_sharp --out runs/paper_width [--datasets tno,vifb]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DATASETS = ("tno", "roadscene", "vifb")
METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]


def pairs_of(dataset: str, work: Path) -> Path:
    """The folder with ``ir/`` and ``vis/`` that ``dataset`` is scored on (links or registered copies under ``work``)."""
    from reproduce import linked_subset, registered_roadscene

    if dataset == "tno":
        return linked_subset(DATA / "tno", json.loads((DATA / "tno" / "split.json").read_text())["test"], work / "tno_test")
    if dataset == "roadscene":
        return registered_roadscene(work / "roadscene_registered")
    return DATA / "vifb"


def score(checkpoint: Path, pairs: Path, out: Path) -> Path:
    """Fuse ``pairs`` with ``checkpoint`` and score them; returns the metrics folder."""
    from tf_twogan.cli import main as twogan

    metrics = out / "metrics"
    if not (metrics / "metrics_mean.csv").is_file():
        fused = out / "fused"
        assert twogan(["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused),
                       "--checkpoint", str(checkpoint), "--quiet"]) == 0
        assert twogan(["evaluate", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--fused", str(fused),
                       "--out", str(metrics), "--metrics", ",".join(METRICS), "--quiet"]) == 0
    return metrics


def main() -> None:
    import sys

    sys.path.insert(0, str(REPO / "results"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "paper_width")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        pairs = pairs_of(dataset, args.out)
        for entry in args.checkpoint:
            name, folder = entry.split("=", 1)
            print(score(Path(folder), pairs, args.out / dataset / name) / "metrics_mean.csv", flush=True)


if __name__ == "__main__":
    main()
