"""Per-metric time of tf_twogan.metrics on one 640x480 triple, and the speed-up
over the straightforward loop oracles (tests/metrics_helpers.py), in one run.

    python benchmarks/bench_metrics.py [--repeats 5] [--oracle-crop 96]

The triple is TNO pair 18 (480x640, gray) with the rounded average as the fused
image.  The loop oracles are literal transcriptions of the MATLAB loops and are
run on the full image for EN, MI, SF, SD and SCD; the slowest (SSIM, FMI, QABF)
run on a centred crop (``--oracle-crop``, default 96x96, 0 = full image) and their
time is scaled to the full image by the number of windows (pixels for QABF),
which their cost is proportional to.  Training jobs may share
the machine, so the load average is printed beside the numbers.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from metrics_helpers import LOOP_ORACLES, reference_inputs  # noqa: E402

from tf_twogan import metrics as M  # noqa: E402


CROPPED_ORACLES = {"SSIM", "FMI", "QABF"}


def _best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _work(metric: str, shape: tuple[int, int]) -> int:
    """Units of work that scale the oracle: windows for windowed metrics, else pixels."""
    h, w = shape
    if metric == "FMI":
        return (h - 2) * (w - 2)
    if metric == "SSIM":
        return (h - 10) * (w - 10)
    return h * w


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--oracle-crop", type=int, default=96)
    args = parser.parse_args(argv)

    ir, vis, fused = reference_inputs({"dataset": "tno", "stem": "18", "fused": "mean"})
    assert ir.shape == (480, 640), ir.shape
    table = M._registry("matlab")
    crop = args.oracle_crop
    if crop:
        top, left = (ir.shape[0] - crop) // 2, (ir.shape[1] - crop) // 2
        small = tuple(x[top:top + crop, left:left + crop] for x in (ir, vis, fused))
    else:
        small = (ir, vis, fused)

    print(f"tf_twogan.metrics on a {ir.shape[1]}x{ir.shape[0]} triple (TNO 18, fused = rounded mean), "
          f"best of {args.repeats}; SSIM/FMI/QABF oracles on {small[0].shape[1]}x{small[0].shape[0]}, scaled")
    print(f"load average before: {os.getloadavg()}")
    print(f"{'metric':6s} {'vectorised ms':>14s} {'loop oracle s':>14s} {'speed-up':>10s}")
    total = 0.0
    for metric in M.PAPER_METRICS:
        seconds = _best_time(lambda: table[metric](ir, vis, fused), args.repeats)
        total += seconds
        inputs = small if metric in CROPPED_ORACLES else (ir, vis, fused)
        start = time.perf_counter()
        LOOP_ORACLES[metric](*inputs)
        oracle = (time.perf_counter() - start) * _work(metric, ir.shape) / _work(metric, inputs[0].shape)
        note = " (crop, scaled)" if inputs is small and small[0].shape != ir.shape else ""
        print(f"{metric:6s} {seconds * 1000:14.1f} {oracle:14.2f} {oracle / seconds:9.0f}x{note}")
    all_eight = _best_time(lambda: M.evaluate(ir, vis, fused), args.repeats)
    print(f"{'sum':6s} {total * 1000:14.1f}")
    print(f"evaluate() all eight: {all_eight * 1000:.1f} ms (goal <= 500 ms)")
    print(f"load average after: {os.getloadavg()}  (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
