"""Per-metric time of tf_twogan.metrics on one 640x480 triple, and the speed-up
over the straightforward loop oracles (tests/metrics_helpers.py), in one run.

    python benchmarks/bench_metrics.py [--repeats 5] [--oracle-crop 96] [--baseline REV]

The triple is TNO pair 18 (480x640, gray) with the rounded average as the fused
image.  The loop oracles are literal transcriptions of the MATLAB loops and are
run on the full image for EN, MI, SF, SD and SCD; the slowest (SSIM, FMI, QABF)
run on a centred crop (``--oracle-crop``, default 96x96, 0 = full image) and their
time is scaled to the full image by the number of windows (pixels for QABF),
which their cost is proportional to.  Training jobs may share
the machine, so the load average is printed beside the numbers.

``--baseline REV`` also times ``tf_twogan/metrics.py`` as it was at git revision
REV (read with ``git show``, nothing is checked out), interleaved with the current
code in the same run, so that a speed-up is measured under the same load.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from metrics_helpers import LOOP_ORACLES, reference_inputs  # noqa: E402

from tf_twogan import metrics as M  # noqa: E402
from tf_twogan.metrics import registry  # noqa: E402


CROPPED_ORACLES = {"SSIM", "FMI", "QABF"}


def _best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _module_at(revision: str) -> types.ModuleType:
    """``tf_twogan.metrics`` as it was at a git revision, loaded under another name."""
    source = subprocess.run(["git", "show", f"{revision}:tf_twogan/metrics.py"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"metrics_at_{revision}")
    module.__file__ = f"{revision}:tf_twogan/metrics.py"
    sys.modules[module.__name__] = module  # dataclasses/typing look the module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


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
    parser.add_argument("--baseline", default=None, help="git revision whose metrics.py to time alongside")
    args = parser.parse_args(argv)
    baseline = _module_at(args.baseline) if args.baseline else None

    ir, vis, fused = reference_inputs({"dataset": "tno", "stem": "18", "fused": "mean"})
    assert ir.shape == (480, 640), ir.shape
    table = registry._registry("matlab")
    crop = args.oracle_crop
    if crop:
        top, left = (ir.shape[0] - crop) // 2, (ir.shape[1] - crop) // 2
        small = tuple(x[top:top + crop, left:left + crop] for x in (ir, vis, fused))
    else:
        small = (ir, vis, fused)

    print(f"tf_twogan.metrics on a {ir.shape[1]}x{ir.shape[0]} triple (TNO 18, fused = rounded mean), "
          f"best of {args.repeats}; SSIM/FMI/QABF oracles on {small[0].shape[1]}x{small[0].shape[0]}, scaled")
    print(f"load average before: {os.getloadavg()}")
    before_head = f" {'before ms':>10s} {'gain':>6s}" if baseline else ""
    print(f"{'metric':6s} {'vectorised ms':>14s}{before_head} {'loop oracle s':>14s} {'speed-up':>10s}")
    total = total_before = 0.0
    old_table = baseline._registry("matlab") if baseline else None
    for metric in M.PAPER_METRICS:
        seconds = _best_time(lambda: table[metric](ir, vis, fused), args.repeats)
        total += seconds
        before = ""
        if baseline:
            old = _best_time(lambda: old_table[metric](ir, vis, fused), args.repeats)
            total_before += old
            before = f" {old * 1000:10.1f} {old / seconds:5.1f}x"
        inputs = small if metric in CROPPED_ORACLES else (ir, vis, fused)
        start = time.perf_counter()
        LOOP_ORACLES[metric](*inputs)
        oracle = (time.perf_counter() - start) * _work(metric, ir.shape) / _work(metric, inputs[0].shape)
        note = " (crop, scaled)" if inputs is small and small[0].shape != ir.shape else ""
        print(f"{metric:6s} {seconds * 1000:14.1f}{before} {oracle:14.2f} {oracle / seconds:9.0f}x{note}")
    print(f"{'sum':6s} {total * 1000:14.1f}" + (f" {total_before * 1000:10.1f}" if baseline else ""))
    all_eight = _best_time(lambda: M.evaluate(ir, vis, fused), args.repeats)
    print(f"evaluate() all eight: {all_eight * 1000:.1f} ms (goal <= 500 ms)")
    if baseline:
        old_all = _best_time(lambda: baseline.evaluate(ir, vis, fused), args.repeats)
        print(f"evaluate() all eight at {args.baseline}: {old_all * 1000:.1f} ms")
        new_all = _best_time(lambda: M.evaluate(ir, vis, fused), args.repeats)
        print(f"evaluate() all eight again (current): {new_all * 1000:.1f} ms")
    print(f"load average after: {os.getloadavg()}  (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
