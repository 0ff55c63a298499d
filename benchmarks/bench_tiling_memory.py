"""Peak memory of tiled fusion: an 8000x6000 pair with ``twogan fuse --tile 1024``.

Builds an 8000x6000 IR/VIS pair (TNO pair 21 mirrored out to that size, 8-bit PNG),
runs ``twogan fuse`` under ``/usr/bin/time -v`` in a fresh process and reports the
maximum resident set size (goal: under 3 GB) and the wall time.

    python benchmarks/bench_tiling_memory.py                       # shipped checkpoint, --tile 1024
    python benchmarks/bench_tiling_memory.py --tile 0 --size 2000x1500   # whole image, for comparison
    python benchmarks/bench_tiling_memory.py --tile auto                 # the default automatic tiling
    python benchmarks/bench_tiling_memory.py --tile auto --random paper --size 2000x1500
    python benchmarks/bench_tiling_memory.py --checkpoint runs/lite_tno

``/usr/bin/time`` comes from the ``time`` package (``apt-get install time``).  Without
a shipped checkpoint a random-weight checkpoint of the ``lite`` widths is used
(memory and speed do not depend on the weights).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_pair(folder: Path, width: int, height: int) -> tuple[Path, Path]:
    """A large registered pair: a real TNO pair reflected out to ``width`` x ``height``."""
    import imageio.v3 as iio

    from tf_twogan.images import read_gray_uint8

    from tf_twogan.datasets import data_root

    data = data_root() / "tno"
    paths = []
    for kind in ("ir", "vis"):
        if (data / kind / "21.bmp").is_file():
            image = read_gray_uint8(data / kind / "21.bmp")
        else:  # smooth noise when the dataset is not there
            from scipy import ndimage

            image = ndimage.gaussian_filter(np.random.default_rng(len(kind)).uniform(0, 255, (480, 640)), 3).astype(np.uint8)
        large = np.pad(image, [(0, max(0, height - image.shape[0])), (0, max(0, width - image.shape[1]))], mode="symmetric")
        path = folder / f"{kind}.png"
        iio.imwrite(path, large[:height, :width])
        paths.append(path)
    return paths[0], paths[1]


def random_checkpoint(folder: Path, name: str = "lite") -> Path:
    """A checkpoint folder with random weights of the preset's widths."""
    import keras

    from tf_twogan.config import preset
    from tf_twogan.models import Generator

    config = preset(name)
    folder.mkdir(parents=True, exist_ok=True)
    for number in (1, 2, 3):
        generator = Generator.from_settings(config.generator, name=f"g{number}")
        generator.build()
        keras.saving.save_model(generator, folder / f"g{number}.keras")
    config.to_json(folder / "config.json")
    return folder


def time_command(command: list[str]) -> dict[str, float]:
    """Run ``command`` under ``/usr/bin/time -v``; max RSS in MB and wall seconds."""
    if not Path("/usr/bin/time").is_file():
        sys.exit("/usr/bin/time is missing: apt-get install time")
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}):\n{result.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))
    return {"max_rss_mb": rss_kb / 1024, "wall_s": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="8000x6000", help="width x height (default 8000x6000)")
    parser.add_argument("--tile", default="1024", help="tile side passed to twogan fuse (default 1024; 'auto': no --tile)")
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the shipped one, else random lite weights)")
    parser.add_argument("--random", choices=("paper", "lite"), help="use random weights of this preset's widths")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="twogan_tiling_"))
    try:
        checkpoint = args.checkpoint
        if args.random:
            checkpoint = str(random_checkpoint(work / "checkpoint", args.random))
        elif checkpoint is None:
            from tf_twogan.checkpoints import checkpoint_dir

            shipped = checkpoint_dir()
            checkpoint = str(shipped if (shipped / "g3.keras").is_file() else random_checkpoint(work / "checkpoint"))
        ir, vis = make_pair(work, width, height)
        command = [sys.executable, "-m", "tf_twogan.cli", "fuse", "--ir", str(ir), "--vis", str(vis),
                   "--out", str(work / "fused.png"), "--checkpoint", checkpoint,
                   "--precision", args.precision, "--quiet"] + ([] if args.tile == "auto" else ["--tile", args.tile])
        load_before = os.getloadavg()[0]
        measured = time_command(command)
        import imageio.v3 as iio

        fused_shape = iio.improps(work / "fused.png").shape
        result = {"size": f"{width}x{height}", "tile": args.tile, "precision": args.precision, "checkpoint": checkpoint,
                  **measured, "megapixels_per_s": width * height / measured["wall_s"] / 1e6,
                  "fused_shape": list(fused_shape), "load_average_before": load_before,
                  "load_average_after": os.getloadavg()[0]}
        print(f"twogan fuse {width}x{height} --tile {args.tile} ({args.precision}): max RSS {measured['max_rss_mb']:.0f} MB, "
              f"wall {measured['wall_s']:.1f} s ({result['megapixels_per_s']:.2f} MP/s incl. start-up), fused {fused_shape}, "
              f"load average {load_before:.2f} -> {result['load_average_after']:.2f}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
