"""How long GAN 3 of ``paper_sharp`` should train: score the model after each epoch.

``twogan train --preset paper_sharp --first-layer-from checkpoints/paper`` trains only
GAN 3 at the paper's widths; its :class:`~tf_twogan.callbacks.AtomicBackupAndRestore`
keeps one ``epoch<N>.weights.h5`` (both networks and both optimizers) at a time.  Copy
each of them aside while the run trains (any copy loop will do), then this script turns
each into a checkpoint folder (``checkpoints/paper``'s G1 and G2 with that epoch's G3),
fuses the 10 TNO test pairs with ``twogan fuse`` and scores them with
``twogan evaluate`` (the eight metrics and TR), one row per epoch, after a row for
iteration 0: G3 with G1's weights, where ``second_layer.init = "g1"`` starts it.

Usage (from the repository root):
  python results/paper_sharp_schedule.py --run RUN --snapshots DIR --out OUT
writes ``OUT/iterations.{csv,md}`` and one checkpoint folder per epoch under ``OUT/``.
"""
from __future__ import annotations

import argparse
import re
import shutil
from functools import partial
from pathlib import Path

from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.cli import main as twogan
from tf_twogan.config import TwoGanConfig
from tf_twogan.evaluate import markdown_table

METRICS = ["EN", "MI", "SSIM", "SF", "SD", "SCD", "FMI", "QABF", "TR"]


def checkpoint_from_backup(backup: Path, config: TwoGanConfig, first_layer: Path, out: Path) -> Path:
    """A checkpoint folder: ``first_layer``'s G1/G2 and the G3 of an epoch backup of GAN 3."""
    from tf_twogan.training import build_pair, second_layer_roles

    pair = build_pair(config, second_layer_roles(config))
    pair.load_weights(str(backup))
    return assemble(pair.generator, config, first_layer, out)


def initial_checkpoint(config: TwoGanConfig, first_layer: Path, out: Path) -> Path:
    """A checkpoint folder whose G3 holds G1's weights: GAN 3 before its first iteration."""
    from tf_twogan.models import Generator
    from tf_twogan.networks_io import load_network

    g3 = Generator.from_settings(config.generator, name="g3")
    g3.build()
    g3.set_weights(load_network(first_layer / "g1.keras").get_weights())
    return assemble(g3, config, first_layer, out)


def assemble(g3, config: TwoGanConfig, first_layer: Path, out: Path) -> Path:
    """A checkpoint folder ``out``: ``first_layer``'s G1 and G2, this ``g3`` and ``config``."""
    from tf_twogan.networks_io import save_model_atomic

    out.mkdir(parents=True, exist_ok=True)
    save_model_atomic(g3, out / "g3.keras")
    for name in ("g1.keras", "g2.keras"):
        shutil.copyfile(first_layer / name, out / name)
    config.to_json(out / "config.json")
    return out


def score(checkpoint: Path, pairs: Path, work: Path) -> dict[str, float]:
    """Mean metrics of ``checkpoint`` over ``pairs/{ir,vis}`` through the CLI."""
    fused = work / "fused"
    assert twogan(["fuse", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--out", str(fused),
                   "--checkpoint", str(checkpoint), "--quiet"]) == 0
    assert twogan(["evaluate", "--ir", str(pairs / "ir"), "--vis", str(pairs / "vis"), "--fused", str(fused),
                   "--out", str(work / "metrics"), "--metrics", ",".join(METRICS), "--quiet"]) == 0
    return score_file(work / "metrics" / "metrics_mean.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the paper_sharp run folder (its config.json)")
    parser.add_argument("--snapshots", type=Path, required=True, help="folder of copied epoch<N>.weights.h5 files")
    parser.add_argument("--pairs", type=Path, required=True, help="folder with ir/ and vis/ of the TNO test pairs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first-layer", type=Path, default=checkpoint_dir("paper"))
    args = parser.parse_args()
    config = TwoGanConfig.from_json(args.run / "config.json")
    steps = config.train.steps_per_epoch
    rows = {"0": scored(args.out / "epoch0", partial(initial_checkpoint, config, args.first_layer), args.pairs)}
    for backup in sorted(args.snapshots.glob("epoch*.weights.h5"), key=lambda p: int(re.findall(r"\d+", p.name)[0])):
        epoch = int(re.findall(r"\d+", backup.name)[0])
        make = partial(checkpoint_from_backup, backup, config, args.first_layer)
        rows[str(epoch * steps)] = scored(args.out / f"epoch{epoch}", make, args.pairs)
    table = markdown_table(rows, METRICS, bold_best=True).replace("| method |", "| GAN-3 iterations |", 1)
    (args.out / "iterations.md").write_text(table)
    print(table)


def scored(folder: Path, make_checkpoint, pairs: Path) -> dict[str, float]:
    """The mean row of ``folder``'s checkpoint (made by ``make_checkpoint(folder / "checkpoint")``), scored once."""
    done = folder / "metrics" / "metrics_mean.csv"
    return score_file(done) if done.is_file() else score(make_checkpoint(folder / "checkpoint"), pairs, folder)


def score_file(path: Path) -> dict[str, float]:
    """The first row of a ``metrics_mean.csv``."""
    lines = path.read_text().splitlines()
    header, values = lines[0].split(","), lines[1].split(",")
    return {name: float(value) for name, value in zip(header[1:], values[1:])}


if __name__ == "__main__":
    main()
