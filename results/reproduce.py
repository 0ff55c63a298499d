"""Rebuild the tables and figures of results/ from a checkpoint with the public CLI (`twogan fuse`, `twogan evaluate`).

Writes, under --out (default runs/results/tables; with --replace-committed under results/,
replacing the committed files):
  tno_test_metrics.{csv,md,png}   the 10 TNO test pairs of the shipped split `tno`
  roadscene_metrics.{csv,md,png}  RoadScene, visible frames resized onto the infrared grid
  vifb/with_ours.{csv,md}         VIFB's 25 published methods plus ours and the FusionGAN baseline (gray)
  runtime.{csv,md}                seconds per pair of each method on this machine
  fig7_tno_grid.png               IR, VIS, FusionGAN, ours with an enlarged red-box region

The datasets come from the data root (`twogan data list`; docs/DATA.md).

Usage (from the repository root):
  python results/reproduce.py [--checkpoint DIR] [--fusiongan-run DIR] [--work runs/results]
                              [--out DIR | --replace-committed] [--skip-roadscene] [--skip-vifb]
The rows are named "two-layer-gan (shipped)" and "fusiongan (shipped baseline)" for the shipped
checkpoints (the defaults: checkpoints/sharp and checkpoints/fusiongan_lite), and after their
folder names when --checkpoint or --fusiongan-run name other runs.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import time
from pathlib import Path

import numpy as np

from tf_twogan.baselines import REFERENCE_FUSIONS, fuse_folder
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main as twogan
from tf_twogan.datasets import require_dataset
from tf_twogan.evaluate import evaluate_vifb_style, markdown_table
from tf_twogan.figures import comparison_grid
from tf_twogan.atomic import atomic_write
from tf_twogan.images import list_images, pair_folders, read_gray_uint8, read_image, resize_box, split_names, write_image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"  # the committed tables: replaced only with --replace-committed
METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]
OURS = "two-layer-gan (shipped)"
# Fig. 7 columns: the hot person of pair 13, the roof tiles of pair 45 (boxed), a fire, a fence
FIG7_PAIRS = ["1", "13", "17", "21", "45"]
FIG7_BOXES = {"45": (212, 330, 80)}  # (top, left, side): the roof tiles
FUSIONGAN = "fusiongan (shipped baseline)"


def linked_subset(source: Path, names: list[str], out: Path) -> Path:
    """A folder of symbolic links to the chosen pairs of ``source/{ir,vis}``."""
    for kind in ("ir", "vis"):
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        images = list_images(source / kind)
        for name in names:
            link = folder / images[name].name
            if not link.exists():
                link.symlink_to(images[name].resolve())
    return out


def registered_roadscene(out: Path) -> Path:
    """RoadScene with each visible frame resized (box filter, colour kept) to its infrared frame's size.

    As distributed, the visible frames are 3.118x (rows) by 2.809x (columns) the
    infrared ones in every pair; a resize onto the infrared grid registers them.
    """
    source = require_dataset("roadscene")
    (out / "ir").mkdir(parents=True, exist_ok=True)
    for name, ir_path, vis_path in pair_folders(source / "ir", source / "vis"):
        ir_link = out / "ir" / ir_path.name
        if not ir_link.exists():
            ir_link.symlink_to(ir_path.resolve())
        target = out / "vis" / f"{name}.png"
        if not target.exists():
            height, width = read_image(ir_path).shape[:2]
            write_image(target, resize_box(read_image(vis_path), height, width))
    return out


def fuse_with_fusiongan(run: Path, pairs: Path, out: Path) -> float:
    """Fuse every pair with a run of `twogan train --method fusiongan` (as `twogan fuse --checkpoint RUN`); seconds per pair."""
    from tf_twogan.fusiongan import fuse_original, load_trained_generator

    generator = load_trained_generator(run)
    seconds = []
    for name, ir_path, vis_path in pair_folders(pairs / "ir", pairs / "vis"):
        ir, vis = read_gray_uint8(ir_path), read_gray_uint8(vis_path)
        start = time.perf_counter()
        fused = fuse_original(ir, vis, generator, "corrected")
        seconds.append(time.perf_counter() - start)
        write_image(out / f"{name}.png", fused)
    return float(np.mean(seconds))


def row_names(checkpoint: str | None, fusiongan_run: Path) -> tuple[str, str]:
    """Table row names of the two-layer and FusionGAN models: fixed for the shipped ones, else the run folder's name."""
    ours = OURS if checkpoint is None else f"two-layer-gan ({Path(checkpoint).name})"
    shipped = fusiongan_run.resolve() == checkpoint_dir("fusiongan_lite").resolve()
    return ours, FUSIONGAN if shipped else f"fusiongan ({fusiongan_run.name})"


def extra_name(checkpoint: str | Path) -> str:
    """Table row name of a further two-layer checkpoint (``--also``)."""
    return f"two-layer-gan ({Path(checkpoint).name})"


def fuse_all(pairs: Path, fused_root: Path, checkpoint: str | None, fusiongan_run: Path,
             also: list[Path] = ()) -> dict[str, float]:
    """Every method's fused folder under ``fused_root``; returns seconds per pair (fusion only)."""
    from tf_twogan.inference import Fuser

    ours, fusiongan = row_names(checkpoint, fusiongan_run)

    count = len(list_images(pairs / "ir"))
    seconds = {}
    sources = [(read_image(ir), read_image(vis)) for _, ir, vis in pair_folders(pairs / "ir", pairs / "vis")]
    for name, folder in [(ours, checkpoint)] + [(extra_name(path), str(path)) for path in also]:
        arguments = ["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused_root / name)]
        assert twogan(arguments + (["--checkpoint", folder] if folder else [])) == 0
        fuser = Fuser(folder)                                       # timing: warm, fusion only
        fuser.fuse_arrays(*sources[0])
        start = time.perf_counter()
        for ir, vis in sources:
            fuser.fuse_arrays(ir, vis)
        seconds[name] = (time.perf_counter() - start) / count
    seconds[fusiongan] = fuse_with_fusiongan(fusiongan_run, pairs, fused_root / fusiongan)
    for method, fusion in REFERENCE_FUSIONS.items():
        start = time.perf_counter()
        fuse_folder(fusion, pairs / "ir", pairs / "vis", fused_root / method)
        seconds[method] = (time.perf_counter() - start) / count
    return seconds


def evaluate_into(pairs: Path, fused_root: Path, methods: list[str], out: Path, tables: Path, stem: str) -> None:
    """`twogan evaluate` over the methods' fused folders; copy the mean table and plot to <tables>/<stem>.*"""
    arguments = ["evaluate", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(out), "--quiet"]
    for method in sorted(methods):
        arguments += ["--fused", str(fused_root / method)]
    assert twogan(arguments) == 0
    for suffix, name in (("csv", "metrics_mean.csv"), ("md", "metrics_mean.md"), ("png", "metrics_mean.png")):
        if (out / name).exists():
            shutil.copyfile(out / name, tables / f"{stem}.{suffix}")


def add_output_arguments(parser: argparse.ArgumentParser, default: Path, committed: Path, what: str) -> None:
    """``--out`` (default under runs/) and ``--replace-committed``: the committed results change only when asked."""
    parser.add_argument("--out", type=Path, default=default, help=f"{what} (default {default.relative_to(REPO)})")
    parser.add_argument("--replace-committed", dest="out", action="store_const", const=committed,
                        help=f"write into {committed.relative_to(REPO)} instead, replacing the committed files")


def write_table(rows: dict[str, dict[str, float]], columns: list[str], stem: Path, bold_best: bool = True) -> None:
    """CSV (method + columns) and Markdown (best per column in bold unless ``bold_best=False``), atomically."""
    with atomic_write(stem.with_suffix(".csv")) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", *columns])
        for method, values in rows.items():
            writer.writerow([method, *(f"{values[c]:.6g}" for c in columns)])
    with atomic_write(stem.with_suffix(".md")) as temporary:
        temporary.write_text(markdown_table(rows, columns, bold_best=bold_best))


def vifb_with_ours(work: Path, tables: Path, checkpoint: str | None, fusiongan_run: Path, also: list[Path] = ()) -> None:
    """Our models join VIFB's 25 published methods (their scores: the committed results/vifb/metrics_mean.csv):
    fuse the 21 pairs, score them (gray), write the merged table to <tables>/vifb/with_ours.*"""
    vifb = require_dataset("vifb")
    ours_name, fusiongan_name = row_names(checkpoint, fusiongan_run)
    twolayer = {"TwoLayerGAN": (ours_name, checkpoint)}
    twolayer.update({f"TwoLayerGAN{i}": (extra_name(path), str(path)) for i, path in enumerate(also, 1)})
    folders = {}
    for method, (_, folder) in twolayer.items():
        folders[method] = work / "vifb_ours" / method
        arguments = ["fuse", "--ir", str(vifb / "ir"), "--vis", str(vifb / "vis"), "--out", str(folders[method])]
        assert twogan(arguments + (["--checkpoint", folder] if folder else [])) == 0
    fuse_with_fusiongan(fusiongan_run, vifb, work / "vifb_fusiongan")
    folders["FusionGANBaseline"] = work / "vifb_fusiongan"
    merged = work / "vifb_merged"
    shutil.rmtree(merged, ignore_errors=True)
    merged.mkdir(parents=True)
    for method, folder in folders.items():
        for path in folder.iterdir():
            shutil.copyfile(path, merged / f"{path.stem}_{method}.png")
    result = evaluate_vifb_style(vifb / "ir", vifb / "vis", merged, work / "vifb_eval", methods=list(folders), progress=False)
    rows = {}
    with (RESULTS / "vifb" / "metrics_mean.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["method"]] = {m: float(row[m]) for m in METRICS}
    for method, (name, _) in twolayer.items():
        rows[name] = {m: result.means[method][m] for m in METRICS}
    rows[fusiongan_name] = {m: result.means["FusionGANBaseline"][m] for m in METRICS}
    write_table(rows, METRICS, tables / "vifb" / "with_ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="two-layer checkpoint folder (default: the shipped one)")
    parser.add_argument("--fusiongan-run", type=Path, default=checkpoint_dir("fusiongan_lite"),
                        help="run folder of `twogan train --method fusiongan` (default: the shipped baseline)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "results")
    parser.add_argument("--also", type=Path, action="append", default=[],
                        help="a further two-layer checkpoint to add as a row (repeatable), e.g. checkpoints/lite")
    parser.add_argument("--skip-roadscene", action="store_true")
    parser.add_argument("--skip-vifb", action="store_true")
    add_output_arguments(parser, REPO / "runs" / "results" / "tables", RESULTS, "folder of the tables and figures")
    args = parser.parse_args()
    tables = args.out
    tables.mkdir(parents=True, exist_ok=True)
    runtimes = {}

    tno = linked_subset(require_dataset("tno"), split_names("tno", "test"), args.work / "tno_test")
    runtimes["TNO test"] = fuse_all(tno, args.work / "tno_fused", args.checkpoint, args.fusiongan_run, args.also)
    evaluate_into(tno, args.work / "tno_fused", list(runtimes["TNO test"]), args.work / "tno_eval", tables, "tno_test_metrics")

    rows = [("IR", [read_gray_uint8(p) for _, p, _ in pair_folders(tno / "ir", tno / "vis", FIG7_PAIRS)]),
            ("VIS", [read_gray_uint8(p) for _, _, p in pair_folders(tno / "ir", tno / "vis", FIG7_PAIRS)])]
    ours, fusiongan = row_names(args.checkpoint, args.fusiongan_run)
    for method, label in ((fusiongan, "FusionGAN"), (ours, "ours")):
        folder = args.work / "tno_fused" / method
        if folder.is_dir():
            rows.append((label, [read_gray_uint8(folder / f"{name}.png") for name in FIG7_PAIRS]))
    boxes = [FIG7_BOXES.get(name, (image.shape[0] // 3, image.shape[1] // 3, min(image.shape) // 5))
             for name, image in zip(FIG7_PAIRS, rows[0][1])]
    comparison_grid(rows, boxes, tables / "fig7_tno_grid.png", column_titles=FIG7_PAIRS)

    if not args.skip_roadscene:
        roadscene = registered_roadscene(args.work / "roadscene_registered")
        runtimes["RoadScene"] = fuse_all(roadscene, args.work / "roadscene_fused", args.checkpoint, args.fusiongan_run, args.also)
        evaluate_into(roadscene, args.work / "roadscene_fused", list(runtimes["RoadScene"]), args.work / "roadscene_eval", tables,
                      "roadscene_metrics")
    if not args.skip_vifb:
        vifb_with_ours(args.work, tables, args.checkpoint, args.fusiongan_run, args.also)

    methods = list(next(iter(runtimes.values())))
    write_table({m: {d: runtimes[d][m] for d in runtimes} for m in methods}, list(runtimes), tables / "runtime", bold_best=False)
    print((tables / "tno_test_metrics.md").read_text())
    print((tables / "runtime.md").read_text())


if __name__ == "__main__":
    main()
