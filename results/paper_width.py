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

With ``--figures`` it also draws ``results/paper_width/fig7_tno.png`` (five TNO test
pairs: sources, then each checkpoint) and ``fig8_vifb.png`` (four VIFB pairs: sources,
the published methods the paper compared that VIFB has, then each checkpoint), with
zoom boxes where the infrared image is hottest (``figures.hot_target_box``).

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


def full_width(checkpoint: Path) -> bool:
    """True for a checkpoint at the paper's widths (the lite ones have committed rows of their own)."""
    from tf_twogan.config import TwoGanConfig, preset

    return TwoGanConfig.from_json(checkpoint / "config.json").generator.widths == preset("paper").generator.widths


def write_committed(dataset: str, checkpoints: dict[str, Path], out: Path) -> None:
    """``results/paper_width/<dataset>_metrics.*`` from the full-width checkpoints' rows and the committed lite rows."""
    import shutil
    from reproduce import write_table

    folder = REPO / "results" / "paper_width"
    folder.mkdir(exist_ok=True)
    names = [name for name, checkpoint in checkpoints.items() if full_width(checkpoint)]
    rows = {f"{name} (full width)": read_rows(out / dataset / name / "metrics" / "metrics_mean.csv")["fused"] for name in names}
    committed = read_rows(COMMITTED[dataset])
    rows.update({label: committed[method] for method, label in COMMITTED_ROWS.items()})
    rows.update({method: values for method, values in committed.items() if not method.startswith(("two-layer", "fusiongan"))})
    write_table(rows, METRICS, folder / f"{dataset}_metrics")
    if dataset == "tno":
        for name in names:
            shutil.copyfile(out / dataset / name / "metrics" / "fused_metrics.csv", folder / f"tno_test_pairs_{name}.csv")


FIG7_PAIRS = ["1", "13", "17", "21", "45"]
FIG8_PAIRS = ["manCall", "carLight", "elecbike", "walkingnight"]
PUBLISHED = ["CBF", "CNN", "LatLRR", "VSMWLS"]  # the methods of the paper's comparison that VIFB publishes (WLS: VSMWLS)


def grid(pairs: Path, names: list[str], columns: dict[str, Path], path: Path) -> Path:
    """A Fig. 7-style grid of ``names``: IR, VIS, then one row per ``label -> folder of <name>.<ext>``."""
    from tf_twogan.figures import comparison_grid, hot_target_box
    from tf_twogan.images import list_images, pair_folders, read_gray_uint8

    chosen = pair_folders(pairs / "ir", pairs / "vis", names)
    ir = [read_gray_uint8(ir_path) for _, ir_path, _ in chosen]
    rows = [("IR", ir), ("VIS", [read_gray_uint8(vis_path) for _, _, vis_path in chosen])]
    rows += [(label, [read_gray_uint8(list_images(folder)[name]) for name, _, _ in chosen]) for label, folder in columns.items()]
    return comparison_grid(rows, [hot_target_box(image, min(image.shape) // 8) for image in ir], path,
                           column_titles=[name for name, _, _ in chosen])


def draw_figures(names: list[str], out: Path) -> None:
    """``results/paper_width/fig7_tno.png`` and ``fig8_vifb.png`` from the fused folders under ``out``."""
    from tf_twogan.datasets import require_dataset

    folder = REPO / "results" / "paper_width"
    grid(out / "tno_test", FIG7_PAIRS, {name: out / "tno" / name / "fused" for name in names}, folder / "fig7_tno.png")
    vifb = require_dataset("vifb")
    published = out / "vifb_published"
    for method in PUBLISHED:
        (published / method).mkdir(parents=True, exist_ok=True)
        for name in FIG8_PAIRS:
            link = published / method / f"{name}.jpg"
            if not link.exists():
                link.symlink_to(vifb / "fused" / f"{name}_{method}.jpg")
    columns = {method: published / method for method in PUBLISHED} | {name: out / "vifb" / name / "fused" for name in names}
    grid(vifb, FIG8_PAIRS, columns, folder / "fig8_vifb.png")


def main() -> None:
    import sys

    sys.path.insert(0, str(REPO / "results"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "paper_width")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--replace-committed", action="store_true", help="also write the tables under results/paper_width/")
    parser.add_argument("--figures", action="store_true", help="also draw results/paper_width/fig7_tno.png and fig8_vifb.png")
    args = parser.parse_args()
    checkpoints = {name: Path(folder) for name, folder in (entry.split("=", 1) for entry in args.checkpoint)}
    for dataset in args.datasets.split(","):
        pairs = pairs_of(dataset, args.out)
        for name, checkpoint in checkpoints.items():
            print(score(checkpoint, pairs, args.out / dataset / name) / "metrics_mean.csv", flush=True)
        if args.replace_committed:
            write_committed(dataset, checkpoints, args.out)
    if args.figures:
        draw_figures(list(checkpoints), args.out)


if __name__ == "__main__":
    main()
