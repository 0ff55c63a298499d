"""Speed of the whole fusion chain (G1, G2 -> G3) on a 640x480 pair.

For the ``paper`` and ``lite`` generator widths (random weights: speed does not
depend on training), float32 and bfloat16, XLA off and on, it reports ms per pair,
megapixels/s and achieved GFLOP/s (3 generators x ``Generator.flops_per_pixel``),
against the conv ceiling measured in the same process: one 3x3 valid conv of the
generator's widest shape (256 -> 128 channels) on a 640x480 map, in the same
precision.  bfloat16 is also scored by PSNR against the float32 output.

    python benchmarks/bench_inference.py                 # all variants, ~2 min idle
    python benchmarks/bench_inference.py --presets lite --repeats 3
    python benchmarks/bench_inference.py --json results/bench_inference.json

Timings are medians after one warm-up run; the 1-minute load average is printed
beside them, since other processes on the machine slow every number down.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_twogan.config import preset  # noqa: E402
from tf_twogan.inference import Fuser  # noqa: E402
from tf_twogan.models import Generator  # noqa: E402

HEIGHT, WIDTH = 480, 640


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: tracing, oneDNN primitive creation, XLA compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_ceiling(precision: str, repeats: int, c_in: int = 256, c_out: int = 128) -> float:
    """GFLOP/s of one large 3x3 valid conv (the generator's widest layer) on a 640x480 map."""
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    x = tf.cast(tf.random.normal([1, HEIGHT + 2, WIDTH + 2, c_in]), dtype)
    kernel = tf.cast(tf.random.normal([3, 3, c_in, c_out], stddev=0.02), dtype)
    conv = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "VALID"))
    seconds = median_seconds(lambda: conv().numpy(), repeats)
    return 2 * 9 * c_in * c_out * HEIGHT * WIDTH / seconds / 1e9


def random_chain(widths: tuple[int, ...], seed: int = 0):
    tf.random.set_seed(seed)
    generators = []
    for number in (1, 2, 3):
        generator = Generator(widths=widths, name=f"g{number}")
        generator.build()
        rng = np.random.default_rng(seed + number)
        # fan-in scaled kernels keep the activations in range, so the output is a real
        # image (not a saturated constant) and the bfloat16 PSNR means something
        generator.set_weights([rng.normal(0, 1 / np.sqrt(np.prod(w.shape[:-1])), w.shape).astype(np.float32)
                               if "kernel" in w.path else (rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                                                           if "variance" in w.path else w.numpy())
                               for w in generator.weights])
        generators.append(generator)
    return (*generators, False)


def pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A real 640x480 TNO pair when the dataset is there (tf_twogan.datasets.data_root), else smooth noise."""
    from tf_twogan.datasets import data_root

    data = data_root() / "tno"
    if (data / "ir" / "21.bmp").is_file():
        from tf_twogan.images import read_gray_uint8

        return read_gray_uint8(data / "ir" / "21.bmp"), read_gray_uint8(data / "vis" / "21.bmp")
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return tuple(ndimage.gaussian_filter(rng.uniform(0, 255, (HEIGHT, WIDTH)), 2).astype(np.uint8) for _ in range(2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="paper,lite", help="comma-separated presets (default paper,lite)")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--jit", default="off,on", help="XLA variants to time (default off,on)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant after one warm-up")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    ir, vis = pair()
    assert ir.shape == (HEIGHT, WIDTH)
    precisions = args.precisions.split(",")
    ceilings = {p: conv_ceiling(p, args.repeats) for p in precisions}
    print(f"CPU conv ceiling (3x3, 256->128, 640x480): " + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in ceilings.items())
          + f"   [load average {os.getloadavg()[0]:.2f}]")
    results = {"ceiling_gflops": ceilings, "runs": []}
    header = (f"{'preset':6} {'precision':9} {'xla':3} {'ms/pair':>9} {'MP/s':>6} {'GFLOP/s':>8} {'% ceiling':>9} "
              f"{'x f32':>6} {'PSNR vs f32':>11} {'load':>5}")
    print(header)
    for name in args.presets.split(","):
        widths = preset(name).generator.widths
        chain = random_chain(widths)
        flops = 3 * chain[0].flops_per_pixel() * HEIGHT * WIDTH
        reference, reference_seconds = None, None
        for precision in precisions:
            for jit in args.jit.split(","):
                fuser = Fuser(generators=chain, precision=precision, tile=0, jit_compile=jit == "on")
                seconds = median_seconds(lambda: fuser.fuse_arrays(ir, vis, as_float=True), args.repeats)
                output = fuser.fuse_arrays(ir, vis, as_float=True)
                if precision == "float32" and reference is None:
                    reference, reference_seconds = output, seconds
                quality = psnr(output, reference) if reference is not None else float("nan")
                row = {"preset": name, "precision": precision, "xla": jit, "ms_per_pair": 1e3 * seconds,
                       "megapixels_per_s": HEIGHT * WIDTH / seconds / 1e6, "gflops": flops / seconds / 1e9,
                       "ceiling_share": flops / seconds / 1e9 / ceilings[precision], "psnr_vs_float32": quality,
                       "speed_vs_float32": (reference_seconds or float("nan")) / seconds,
                       "gflop_per_pair": flops / 1e9, "load_average": os.getloadavg()[0]}
                results["runs"].append(row)
                print(f"{name:6} {precision:9} {jit:3} {row['ms_per_pair']:9.1f} {row['megapixels_per_s']:6.2f} "
                      f"{row['gflops']:8.1f} {100 * row['ceiling_share']:8.1f}% {row['speed_vs_float32']:6.2f} {quality:11.1f} "
                      f"{row['load_average']:5.2f}",
                      flush=True)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
