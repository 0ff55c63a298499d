"""Score two-layer checkpoints on TNO test, RoadScene and VIFB with the public CLI, one row each.

For each ``--checkpoint NAME=DIR`` and each dataset, ``twogan fuse`` writes the fused
images and ``twogan evaluate`` scores them (the paper's eight metrics and TR, gray,
MATLAB conventions) into ``OUT/<dataset>/<NAME>/metrics/`` (``metrics_mean.csv`` and
the per-pair ``fused_metrics.csv``).  The pairs are those of ``results/reproduce.py``:
the 10 TNO test pairs of the shipped ``tno`` split, the 221 RoadScene pairs with each visible
frame box-resized onto its infrared frame, the 21 VIFB pairs.  A dataset already
scored for a name is not scored again (delete its folder to redo it).

With ``--replace-committed`` the rows (means, and the per-pair scores of TNO test) are
also written to ``results/paper_width/<dataset>_metrics.{csv,md}`` and
``results/paper_width/tno_test_pairs_<NAME>.csv``, with the committed rows of the lite
models and the references of each dataset's own table beside them.

Usage (from the repository root):
  python results/paper_width.py --checkpoint paper=tf_twogan/checkpoints/paper \\
      --checkpoint paper_sharp=tf_twogan/checkpoints/paper_sharp --out runs/paper_width [--datasets tno,vifb]
"""
from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("tno", "roadscene", "vifb")
METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]


def pairs_of(dataset: str, work: Path) -> Path:
    """The folder with ``ir/`` and ``vis/`` that ``dataset`` is scored on (links or registered copies under ``work``)."""
    from reproduce import linked_subset, registered_roadscene

    from tf_twogan.datasets import require_dataset
    from tf_twogan.images import split_names

    if dataset == "tno":
        return linked_subset(require_dataset("tno"), split_names("tno", "test"), work / "tno_test")
    if dataset == "roadscene":
        return registered_roadscene(work / "roadscene_registered")
    return require_dataset("vifb")


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


COMMITTED = {"tno": REPO / "results" / "tno_test_metrics.csv", "roadscene": REPO / "results" / "roadscene_metrics.csv",
             "vifb": REPO / "results" / "vifb" / "with_ours.csv"}
COMMITTED_ROWS = {"two-layer-gan (shipped)": "sharp (1/8 width)", "fusiongan (shipped baseline)": "fusiongan_lite (baseline, 1/8 width)"}


def read_rows(path: Path) -> dict[str, dict[str, float]]:
    """``method -> {metric: value}`` of a results CSV (first column the method or image)."""
    import csv

    with path.open(newline="") as handle:
        return {row.pop(next(iter(row))): {m: float(v) for m, v in row.items()} for row in csv.DictReader(handle)}


def write_committed(dataset: str, names: list[str], out: Path) -> None:
    """``results/paper_width/<dataset>_metrics.*`` from the scored rows and the committed lite rows."""
    import shutil
    from reproduce import write_table

    folder = REPO / "results" / "paper_width"
    folder.mkdir(exist_ok=True)
    rows = {f"{name} (full width)": read_rows(out / dataset / name / "metrics" / "metrics_mean.csv")["fused"] for name in names}
    committed = read_rows(COMMITTED[dataset])
    rows.update({label: committed[method] for method, label in COMMITTED_ROWS.items()})
    rows.update({method: values for method, values in committed.items() if not method.startswith(("two-layer", "fusiongan"))})
    write_table(rows, METRICS, folder / f"{dataset}_metrics")
    if dataset == "tno":
        for name in names:
            shutil.copyfile(out / dataset / name / "metrics" / "fused_metrics.csv", folder / f"tno_test_pairs_{name}.csv")


def main() -> None:
    import sys

    sys.path.insert(0, str(REPO / "results"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "paper_width")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--replace-committed", action="store_true", help="also write the tables under results/paper_width/")
    args = parser.parse_args()
    names = [entry.split("=", 1)[0] for entry in args.checkpoint]
    for dataset in args.datasets.split(","):
        pairs = pairs_of(dataset, args.out)
        for entry in args.checkpoint:
            name, folder = entry.split("=", 1)
            print(score(Path(folder), pairs, args.out / dataset / name) / "metrics_mean.csv", flush=True)
        if args.replace_committed:
            write_committed(dataset, names, args.out)


if __name__ == "__main__":
    main()
