"""Second-layer designs of the two-layer GAN, side by side at an equal budget.

Every variant retrains only GAN 3 on top of one trained first layer (G1, G2 of
``--first-layer``, default ``results/lambda100_chain``), with that run's config and
only the ``second_layer`` settings (and ``train.swap_second_layer``) changed; GAN 3
trains ``--epochs`` epochs (``second_layer.epochs``; default 10 x 100 = 1,000
iterations), seed 0.  Each run is ``twogan train --config <variant>.json
--first-layer-from <first layer>``, so rerunning this command resumes or skips what
is finished.  The fused TNO test pairs are scored with ``evaluate_folders``: the
paper's eight metrics and this project's thermal retention (TR, docs/METRICS.md).

Variants (``second_layer.intensity_target`` / ``gradient_target`` / ``init``):

  paper                 I_IRV / I_VIR / scratch         the paper's roles
  swapped               I_VIR / I_IRV, G3 input and D real swapped (train.swap_second_layer)
  irv-detail            I_IRV / I_IRV                    both targets from the IR-anchored output
  max-grad              I_IRV / max(|lap I_IRV|, |lap I_VIR|)
  max-grad-sources      I_IRV / max(|lap IR|, |lap VIS|)
  max-grad g1-init      max-grad, G3 starting from G1's weights
  max-both              max(I_IRV, I_VIR) / max(|lap I_IRV|, |lap I_VIR|)
  max-both-sources      max(IR, VIS) / max(|lap IR|, |lap VIS|)

Usage (from the repository root; about 8 minutes per variant on 2 idle cores):
  python results/second_layer.py --store runs/tno_train.h5 [--variants paper,max-grad] [--work runs/second_layer]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tf_twogan.cli import main as twogan
from tf_twogan.config import TwoGanConfig
from tf_twogan.evaluate import evaluate_folders
from tf_twogan.images import natural_key

from reproduce import DATA, RESULTS, REPO, linked_subset, write_table

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=REPO / "runs" / "tno_train.h5", help="TNO training store (twogan prepare)")
    parser.add_argument("--first-layer", type=Path, default=RESULTS / "lambda100_chain", help="run whose G1/G2 are reused")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "second_layer")
    parser.add_argument("--epochs", type=int, default=10, help="GAN 3's epochs (of the first layer's steps per epoch)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--out", type=Path, default=RESULTS / "second_layer", help="table path without suffix")
    parser.add_argument("--train-only", action="store_true", help="train the variants, do not evaluate")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")

    test_names = sorted(json.loads((DATA / "tno" / "split.json").read_text())["test"], key=natural_key)
    tno = linked_subset(DATA / "tno", test_names, args.work / "tno_test")
    fused_folders = []
    for variant in variants:
        start = time.perf_counter()
        run_dir = train_variant(variant, args)
        print(f"{variant}: trained ({(time.perf_counter() - start) / 60:.1f} min this call)", flush=True)
        if args.train_only:
            continue
        fused = args.work / "fused" / variant
        assert twogan(["fuse", "--ir", str(tno / "ir"), "--vis", str(tno / "vis"), "--out", str(fused),
                       "--checkpoint", str(run_dir), "--quiet"]) == 0
        fused_folders.append(fused)
    if args.train_only:
        return
    result = evaluate_folders(tno / "ir", tno / "vis", fused_folders, args.work / "eval", metrics=METRICS, progress=False)
    write_table({variant: result.means[variant] for variant in variants}, METRICS, args.out)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
