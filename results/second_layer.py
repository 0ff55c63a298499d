"""Second-layer designs of the two-layer GAN, side by side at an equal budget.

Every variant retrains only GAN 3 on top of one trained first layer (G1, G2 of
``--first-layer``, default ``results/lambda100_chain``), with that run's config and
only the ``second_layer`` settings (and ``train.swap_second_layer``) changed; GAN 3
trains ``--epochs`` epochs (``second_layer.epochs``; default 10 x 100 = 1,000
iterations), seed 0.  Each run is ``twogan train --config <variant>.json
--first-layer-from <first layer>``, so rerunning this command resumes or skips what
is finished.  Each variant then fuses the TNO test pairs, RoadScene (visible frames
registered as in reproduce.py) and VIFB, beside the shipped FusionGAN baseline,
average, max-select and (``--paper-mirror``) the paper-width reference, and
``evaluate_folders`` scores them: the paper's eight metrics and this project's
thermal retention (TR, docs/METRICS.md).  Tables: ``--out`` (default runs/second_layer/tables;
``--replace-committed``: results/second_layer)``/{tno,roadscene,vifb}.{csv,md}``.

Variants (``second_layer.intensity_target`` / ``gradient_target`` / ``init``):

  paper                 I_IRV / I_VIR / scratch         the paper's roles
  swapped               I_VIR / I_IRV, G3 input and D real swapped (train.swap_second_layer)
  irv-detail            I_IRV / I_IRV                    both targets from the IR-anchored output
  max-grad              I_IRV / max(|lap I_IRV|, |lap I_VIR|)
  max-grad-sources      I_IRV / max(|lap IR|, |lap VIS|)
  max-grad g1-init      max-grad, G3 starting from G1's weights
  max-both              max(I_IRV, I_VIR) / max(|lap I_IRV|, |lap I_VIR|)
  max-both-sources      max(IR, VIS) / max(|lap IR|, |lap VIS|)
  max-grad zeta10       max-grad with the second-layer content weight zeta = 10 (paper: 100)

Usage (from the repository root; about 8 minutes per variant on 2 idle cores):
  python results/second_layer.py --store runs/tno_train.h5 [--variants paper,max-grad] [--datasets tno]
      [--paper-mirror runs/paper_mirror] [--work runs/second_layer]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from tf_twogan.baselines import REFERENCE_FUSIONS, fuse_folder
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main as twogan
from tf_twogan.config import TwoGanConfig
from tf_twogan.evaluate import evaluate_folders
from tf_twogan.datasets import require_dataset
from tf_twogan.images import split_names

from reproduce import FUSIONGAN, RESULTS, REPO, add_output_arguments, fuse_with_fusiongan, linked_subset, registered_roadscene, write_table

PAPER_MIRROR = "paper-width reference (independent GPU run)"

METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]

VARIANTS: dict[str, dict] = {
    "paper": {},
    "swapped": {"train": {"swap_second_layer": True}},
    "irv-detail": {"second_layer": {"gradient_target": "irv"}},
    "max-grad": {"second_layer": {"gradient_target": "max_first_layer"}},
    "max-grad-sources": {"second_layer": {"gradient_target": "max_sources"}},
    "max-grad g1-init": {"second_layer": {"gradient_target": "max_first_layer", "init": "g1"}},
    "max-both": {"second_layer": {"intensity_target": "max_first_layer", "gradient_target": "max_first_layer"}},
    "max-both-sources": {"second_layer": {"intensity_target": "max_sources", "gradient_target": "max_sources"}},
    "max-grad zeta10": {"second_layer": {"gradient_target": "max_first_layer"}, "loss": {"second_layer_content_weight": 10.0}},
}


def variant_config(first_layer: Path, changes: dict, epochs: int) -> TwoGanConfig:
    """The first layer's config with the variant's second-layer changes and GAN 3's own number of epochs."""
    base = TwoGanConfig.from_json(first_layer / "config.json")
    return base.replace(**changes).replace(second_layer={"epochs": epochs})


def folder_name(variant: str) -> str:
    return variant.replace(" ", "_")


def train_variant(variant: str, args: argparse.Namespace) -> Path:
    """``twogan train`` of one variant (resumes; skips a finished run); returns the run folder."""
    run_dir = args.work / folder_name(variant)
    config_path = args.work / f"{folder_name(variant)}.json"
    config = variant_config(args.first_layer, VARIANTS[variant], args.epochs)
    args.work.mkdir(parents=True, exist_ok=True)
    config.to_json(config_path)
    status = twogan(["train", "--store", str(args.store), "--out", str(run_dir), "--config", str(config_path),
                     "--first-layer-from", str(args.first_layer), "--quiet"])
    if status:
        raise SystemExit(f"{variant}: twogan train failed ({status})")
    return run_dir


def datasets(work: Path, which: list[str]) -> dict[str, Path]:
    """The evaluation sets as folders of ``ir/`` and ``vis/``: TNO test, RoadScene (registered), VIFB."""
    folders = {}
    if "tno" in which:
        folders["tno"] = linked_subset(require_dataset("tno"), split_names("tno", "test"), work / "tno_test")
    if "roadscene" in which:
        folders["roadscene"] = registered_roadscene(work / "roadscene_registered")
    if "vifb" in which:
        folders["vifb"] = require_dataset("vifb")
    return folders


def fuse_references(pairs: Path, fused_root: Path, paper_mirror: Path | None) -> list[Path]:
    """The rows every table carries: the shipped FusionGAN baseline, average, max-select, the paper-width reference."""
    folders = []
    fusiongan = fused_root / FUSIONGAN
    if not fusiongan.is_dir():
        fuse_with_fusiongan(checkpoint_dir("fusiongan_lite"), pairs, fusiongan)
    folders.append(fusiongan)
    for method, fusion in REFERENCE_FUSIONS.items():
        if not (fused_root / method).is_dir():
            fuse_folder(fusion, pairs / "ir", pairs / "vis", fused_root / method)
        folders.append(fused_root / method)
    if paper_mirror is not None:
        fused = fused_root / PAPER_MIRROR
        if not fused.is_dir():
            assert twogan(["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused),
                           "--checkpoint", str(paper_mirror), "--quiet"]) == 0
        folders.append(fused)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=REPO / "runs" / "tno_train.h5", help="TNO training store (twogan prepare)")
    parser.add_argument("--first-layer", type=Path, default=RESULTS / "lambda100_chain", help="run whose G1/G2 are reused")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "second_layer")
    parser.add_argument("--epochs", type=int, default=10, help="GAN 3's epochs (of the first layer's steps per epoch)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--datasets", default="tno,roadscene,vifb", help="comma-separated subset of tno, roadscene, vifb")
    parser.add_argument("--paper-mirror", type=Path, help="checkpoint made by results/paper_mirror.py: adds its row")
    add_output_arguments(parser, REPO / "runs" / "second_layer" / "tables", RESULTS / "second_layer", "folder of the tables")
    parser.add_argument("--train-only", action="store_true", help="train the variants, do not evaluate")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")

    runs = {}
    for variant in variants:
        start = time.perf_counter()
        runs[variant] = train_variant(variant, args)
        print(f"{variant}: trained ({(time.perf_counter() - start) / 60:.1f} min this call)", flush=True)
    if args.train_only:
        return
    for dataset, pairs in datasets(args.work, args.datasets.split(",")).items():
        fused_root = args.work / "fused" / dataset
        folders = []
        for variant, run_dir in runs.items():
            fused = fused_root / variant          # always fused again: never a stale or partial folder
            assert twogan(["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused),
                           "--checkpoint", str(run_dir), "--quiet"]) == 0
            folders.append(fused)
        folders += fuse_references(pairs, fused_root, args.paper_mirror)
        result = evaluate_folders(pairs / "ir", pairs / "vis", folders, args.work / "eval" / dataset, metrics=METRICS,
                                  progress=False)
        write_table({folder.name: result.means[folder.name] for folder in folders}, METRICS, args.out / dataset)
        print(f"{dataset}:\n" + (args.out / f"{dataset}.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
