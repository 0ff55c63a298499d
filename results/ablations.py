"""Ablations of the two-layer GAN at a small equal budget; writes runs/ablations/ablations.{csv,md}
(``--replace-committed``: results/ablations.{csv,md}).

Every variant is the ``lite`` preset (seed 0) with 2 epochs of 100 batches per GAN
(600 iterations of 2 D + 1 G updates in all), trained on the TNO training store,
fused over the 10 TNO test pairs with ``twogan fuse`` and scored with
``evaluate_folders``.  Variants (docs/DESIGN.md sections 2-3):

  paired (baseline)      each generator takes [primary, other] (FusionGAN's convention)
  single-input           the paper's literal reading: each generator sees its primary only
  G3 swapped             G3 takes [I_VIR, I_IRV] with I_IRV as D3's real image
  lambda 0.5 / 8 / 100   first-layer content weight (paper: 2; 100 is FusionGAN's)
  zeta 10 / zeta 1000    second-layer content weight (paper: 100)

Runs live in ``--work`` (default runs/ablations); rerunning the command resumes or
skips the training that is finished.  The baseline trains first, and a variant that
differs from it only in what GAN 3 uses (G3 swapped, zeta 10, zeta 1000) then takes
its G1 and G2 (``train(..., first_layer_from=)``) and trains GAN 3 alone: the same
config and seed would train the same first layer again (tests/test_second_layer.py
checks that a reused first layer gives the uninterrupted run's G3 exactly, at tiny
widths; at the lite widths two seeded runs already differ by float rounding unless
TF_NUM_INTRAOP_THREADS=1, README "Bit-identical reruns").  The committed table was made before this reuse, with a full chain per variant.

Usage (from the repository root; about 5 minutes per variant on 2 idle cores):
  python results/ablations.py --store runs/tno_train.h5 [--epochs 2] [--steps-per-epoch 100]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from tf_twogan.cli import main as twogan
from tf_twogan.config import TwoGanConfig, preset
from tf_twogan.evaluate import evaluate_folders
from tf_twogan.datasets import require_dataset
from tf_twogan.images import split_names
from tf_twogan.run_folder import second_layer_variant
from tf_twogan.training import train

from reproduce import METRICS, RESULTS, REPO, add_output_arguments, linked_subset, write_table

BASELINE = "paired (baseline)"
VARIANTS: dict[str, dict] = {
    BASELINE: {},
    "single-input": {"generator": {"input_mode": "single"}},
    "G3 swapped": {"train": {"swap_second_layer": True}},
    "lambda 0.5": {"loss": {"first_layer_content_weight": 0.5}},
    "lambda 8": {"loss": {"first_layer_content_weight": 8.0}},
    "lambda 100": {"loss": {"first_layer_content_weight": 100.0}},
    "zeta 10": {"loss": {"second_layer_content_weight": 10.0}},
    "zeta 1000": {"loss": {"second_layer_content_weight": 1000.0}},
}


def variant_config(changes: dict, epochs: int, steps: int) -> TwoGanConfig:
    return preset("lite").replace(train={"epochs": epochs, "steps_per_epoch": steps, "seed": 0}).replace(**changes)


def folder_name(variant: str) -> str:
    return variant.replace(" ", "_").replace("(", "").replace(")", "")


def first_layer_source(config: TwoGanConfig, work: Path) -> Path | None:
    """The baseline's run folder when its G1 and G2 are trained and ``config`` differs from its config only in what GAN 3 uses."""
    baseline = work / folder_name(BASELINE)
    if not all((baseline / name).is_file() for name in ("config.json", "g1.keras", "g2.keras")):
        return None
    theirs = TwoGanConfig.from_json(baseline / "config.json")
    # the same schedule too: a first layer adopted by `twogan train` may come from another one, an ablation's may not
    same_schedule = dataclasses.replace(theirs.train, swap_second_layer=config.train.swap_second_layer) == config.train
    return baseline if theirs != config and same_schedule and second_layer_variant(theirs, config) == config else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=REPO / "runs" / "tno_train.h5", help="TNO training store (twogan prepare)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "ablations")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    add_output_arguments(parser, REPO / "runs" / "ablations" / "ablations", RESULTS / "ablations", "table path without suffix")
    parser.add_argument("--test-pairs", type=int, default=None,
                        help="fuse and score only the first N TNO test pairs (default: all 10; the tests use 2)")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")

    test_names = split_names("tno", "test")[:args.test_pairs]
    tno = linked_subset(require_dataset("tno"), test_names, args.work / "tno_test")
    minutes = {}
    for variant in sorted(variants, key=lambda name: name != BASELINE):  # the baseline first: others may reuse its first layer
        run_dir, config = args.work / folder_name(variant), variant_config(VARIANTS[variant], args.epochs, args.steps_per_epoch)
        first_layer = first_layer_source(config, args.work)
        start = time.perf_counter()
        train(args.store, run_dir, config, verbose=2, first_layer_from=first_layer)
        minutes[variant] = (time.perf_counter() - start) / 60
        fused = args.work / "fused" / variant        # always fused again: seconds, and never a stale or partial folder
        assert twogan(["fuse", "--ir", str(tno / "ir"), "--vis", str(tno / "vis"), "--out", str(fused),
                       "--checkpoint", str(run_dir), "--quiet"]) == 0
        reused = " (G1, G2 of the baseline)" if first_layer else ""
        print(f"{variant}: trained{reused} and fused ({minutes[variant]:.1f} min this call)", flush=True)
    fused_folders = [args.work / "fused" / variant for variant in variants]
    result = evaluate_folders(tno / "ir", tno / "vis", fused_folders, args.work / "eval", progress=False)
    write_table({variant: result.means[variant] for variant in variants}, METRICS, args.out)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
