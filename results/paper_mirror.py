"""Load the paper-width reference weights into this package's networks and check them.

``../shared/reference/paper_mirror/weights.npz`` holds the six networks of the
``paper`` protocol at full width, trained on one GPU by an independent PyTorch
re-implementation of this package's semantics (its README: G1/G2 7 of 10 epochs,
G3 8; bfloat16 convolutions).  This script builds ``models.Generator`` /
``Discriminator`` at the ``paper`` preset's widths, assigns every variable from the
key ``<network>/<layer>/<variable>``, and writes a checkpoint folder (``g1.keras`` ...
``d3.keras``, ``config.json`` = ``preset("paper")``) that ``twogan fuse --checkpoint``
and ``inference.Fuser`` load.

Usage (from the repository root):
  python results/paper_mirror.py --out runs/paper_mirror
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tf_twogan.config import TwoGanConfig, preset
from tf_twogan.models import Discriminator, Generator
from tf_twogan.training import save_model_atomic

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "reference" / "paper_mirror" / "weights.npz"


def reference_config(weights: np.lib.npyio.NpzFile) -> TwoGanConfig:
    """``preset("paper")``, checked against the constants the reference run records under ``setup``."""
    setup = json.loads(str(weights["setup"]))
    config = preset("paper")
    recorded = {"g_widths": list(config.generator.widths), "d_widths": list(config.discriminator.widths),
                "first_layer_content_weight": config.loss.first_layer_content_weight,
                "second_layer_content_weight": config.loss.second_layer_content_weight,
                "gradient_weight": config.loss.gradient_weight, "learning_rate": config.train.learning_rate,
                "batch_size": config.train.batch_size, "swap_second_layer": config.train.swap_second_layer,
                "patch_size": config.data.patch_size, "stride": config.data.stride}
    differ = [key for key, value in recorded.items() if setup[key] != value]
    if differ:
        raise SystemExit(f"{WEIGHTS}: setup differs from preset('paper') in {differ}")
    return config


def assign(network, weights: np.lib.npyio.NpzFile) -> None:
    """Every variable of ``network`` from ``<network name>/<layer>/<variable>``; all keys of the network used."""
    used = set()
    for variable in network.weights:
        key = f"{network.name}/{'/'.join(variable.path.split('/')[-2:])}"
        value = weights[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise SystemExit(f"{key}: shape {value.shape} != {tuple(variable.shape)}")
        variable.assign(value)
        used.add(key)
    unused = sorted(k for k in weights.files if k.startswith(network.name + "/") and k not in used)
    if unused:
        raise SystemExit(f"{network.name}: keys not assigned: {unused}")


def convert(out: Path, source: Path = WEIGHTS) -> Path:
    """Write the reference networks as a checkpoint folder; returns it."""
    weights = np.load(source)
    config = reference_config(weights)
    out.mkdir(parents=True, exist_ok=True)
    for number in (1, 2, 3):
        generator = Generator.from_settings(config.generator, name=f"g{number}")
        generator.build()
        discriminator = Discriminator.from_settings(config.discriminator, input_size=config.data.patch_size, name=f"d{number}")
        discriminator.build()
        for network in (generator, discriminator):
            assign(network, weights)
            save_model_atomic(network, out / f"{network.name}.keras")
    config.to_json(out / "config.json")
    return out


def first_layer_outputs(checkpoint: Path, pairs: Path, out: Path) -> tuple[Path, Path]:
    """G1's I_IRV and G2's I_VIR of every pair in ``pairs/{ir,vis}`` as PNGs under ``out/{irv,vir}`` (whole images)."""
    from tf_twogan.images import pair_folders, read_gray_uint8, to_uint8, write_image
    from tf_twogan.models import generate
    from tf_twogan.training import load_generators

    g1, g2, _ = load_generators(checkpoint)
    for name, ir_path, vis_path in pair_folders(pairs / "ir", pairs / "vis"):
        ir, vis = read_gray_uint8(ir_path), read_gray_uint8(vis_path)
        write_image(out / "irv" / f"{name}.png", to_uint8(generate(g1, ir, vis)))
        write_image(out / "vir" / f"{name}.png", to_uint8(generate(g2, vis, ir)))
    return out / "irv", out / "vir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "paper_mirror")
    parser.add_argument("--first-layer", type=Path, metavar="PAIRS",
                        help="also write G1/G2 outputs of the pairs in PAIRS/{ir,vis} under OUT/first_layer/")
    args = parser.parse_args()
    print(convert(args.out, args.weights))
    if args.first_layer is not None:
        print(*first_layer_outputs(args.out, args.first_layer, args.out / "first_layer"))


if __name__ == "__main__":
    main()
