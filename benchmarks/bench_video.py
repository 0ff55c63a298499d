"""Frames per second of video fusion at 640x480 with the shipped checkpoint, warm model.

For float32 and bfloat16, XLA off and on, and batches of 1, 2 and 4 frames, it fuses
real 640x480 frames (crops of a TNO pair, panning) and reports frames per second of
the chain (``Fuser.fuse_luma_batch``) and of the whole per-frame path that
``tf_twogan.video`` runs (``Fuser.fuse_arrays``: colour split, chain, rounding).
bfloat16 is scored by PSNR against float32 on the same frames.  The CPU's bfloat16
flags and the load average are printed beside the numbers: bfloat16 is only fast on
CPUs with AVX512_BF16 or AMX (elsewhere oneDNN emulates it).

    python benchmarks/bench_video.py                       # all variants
    python benchmarks/bench_video.py --frames 8 --batches 1,4 --json results/bench_video.json
"""
from __future__ import annotations

import argparse
import os
import time

from common import load_note, write_json

from tf_twogan.console import import_tensorflow_quietly

import_tensorflow_quietly()

import numpy as np  # noqa: E402

from tf_twogan.datasets import require_dataset  # noqa: E402
from tf_twogan.images import read_gray_uint8  # noqa: E402
from tf_twogan.inference import Fuser  # noqa: E402
from tf_twogan.precision import cpu_flags, default_precision  # noqa: E402

HEIGHT, WIDTH = 480, 640


def frames(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real 640x480 IR/VIS frame pairs: crops of TNO pair 1 (576x768) panning 8 px per frame."""
    tno = require_dataset("tno")
    ir, vis = read_gray_uint8(tno / "ir" / "1.bmp"), read_gray_uint8(tno / "vis" / "1.bmp")
    offsets = [(min(4 * k, ir.shape[0] - HEIGHT), min(8 * k, ir.shape[1] - WIDTH)) for k in range(count)]
    return (np.stack([ir[y:y + HEIGHT, x:x + WIDTH] for y, x in offsets]),
            np.stack([vis[y:y + HEIGHT, x:x + WIDTH] for y, x in offsets]))


def frames_per_second(run, count: int, repeats: int) -> float:
    """Best of ``repeats`` timings of ``run`` (which fuses ``count`` frames), after one warm-up."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="frames per timing (a multiple of each batch)")
    parser.add_argument("--batches", default="1,2,4", help="batch sizes to time")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    flags = sorted(cpu_flags() & {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx2"})
    print(f"CPU flags: {' '.join(flags)}; default video precision here: {default_precision()}")
    print(f"{load_note()} (start)")
    irs, vises = frames(args.frames)
    results, reference = [], None
    for precision in args.precisions.split(","):
        for xla in args.xla.split(","):
            fuser = Fuser(precision=precision, jit_compile=xla == "on", tile=0)
            per_frame = frames_per_second(lambda: [fuser.fuse_arrays(a, b) for a, b in zip(irs, vises)], len(irs), args.repeats)
            fused = np.stack([fuser.fuse_arrays(a, b) for a, b in zip(irs, vises)])
            if reference is None:
                reference = fused
            row = dict(precision=precision, xla=xla, per_frame_fps=round(per_frame, 2),
                       psnr_vs_first=round(float(psnr(reference, fused)), 1))
            for batch in map(int, args.batches.split(",")):
                run = lambda: [fuser.fuse_luma_batch(irs[i:i + batch], vises[i:i + batch]) for i in range(0, len(irs), batch)]  # noqa: E731
                row[f"chain_fps_batch{batch}"] = round(frames_per_second(run, len(irs), args.repeats), 2)
            results.append(row)
            print(row, f"[{load_note()}]", flush=True)
    write_json(args.json, dict(cpu_flags=flags, load=os.getloadavg(), results=results, height=HEIGHT, width=WIDTH))


if __name__ == "__main__":
    main()
