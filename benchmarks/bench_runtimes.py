"""Exported chains without TensorFlow: start-up and 640x480 frames per second per runtime (issue 23).

In one run:

- exports the checkpoint (default: the shipped one) to ONNX, OpenVINO IR and LiteRT
  (``tf_twogan.export.export_model``) into a temporary folder;
- **start-up**: whole-process wall time (a fresh interpreter, start to exit) of a
  single-pair ``twogan fuse --model FILE`` per format, and of the TensorFlow
  ``twogan fuse --checkpoint`` for comparison, on the 640x480 TNO pair 21; median of
  ``--repeats`` runs after one warm-up run (the OS file cache is warm, as for a user
  who fuses twice);
- **frames per second** at 640x480: ``fuse_arrays`` on that pair (colour handling
  included, file I/O not), each runtime and precision in its own process (TensorFlow
  float32 ``Fuser``; onnxruntime; OpenVINO at f32 and at its default precision hint;
  LiteRT; onnxruntime on the int8 ONNX file), ``--frames`` calls after two warm-up calls,
  with the largest difference of the fused luma against TensorFlow float32 in grey levels
  and its PSNR;
- the CPU flags that decide OpenVINO's default precision (AVX512_BF16, AMX) and the
  load average before and after.

    python benchmarks/bench_runtimes.py --repeats 5 --frames 30 --json results/bench_runtimes.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, TNO, load_note, write_json

PAIR = (TNO / "ir" / "21.bmp", TNO / "vis" / "21.bmp")  # 640 x 480
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}
EXPORTS = {"onnx": ("onnx", "float32"), "openvino": ("openvino", "float32"), "litert": ("litert", "float32"),
           "onnx-int8": ("onnx", "int8")}
"""Exported file -> (format, precision); int8 is calibrated on TNO training pairs (tf_twogan.quantize)."""
# (label, format or "tensorflow", precision given to the fuser)
CONFIGURATIONS = [("TensorFlow float32", "tensorflow", "float32"), ("onnxruntime float32", "onnx", "float32"),
                  ("OpenVINO f32", "openvino", "float32"), ("OpenVINO default hint", "openvino", None),
                  ("LiteRT float32", "litert", "float32"), ("onnxruntime int8", "onnx-int8", "float32")]
CPU_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")

WORKER = """
import json, sys, time
import numpy as np
from tf_twogan.images import read_image
kind, model, precision, frames, reference = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None, int(sys.argv[4]), sys.argv[5]
ir, vis = read_image(sys.argv[6]), read_image(sys.argv[7])
start = time.perf_counter()
if kind == "tensorflow":
    from tf_twogan.inference import Fuser
    fuser = Fuser(model, precision=precision)
else:
    from tf_twogan.runtime import RuntimeFuser
    fuser = RuntimeFuser(model, precision=precision)
loaded = time.perf_counter() - start
for _ in range(2):
    luma = fuser.fuse_arrays(ir, vis, as_float=True)
start = time.perf_counter()
for _ in range(frames):
    fuser.fuse_arrays(ir, vis)
seconds = time.perf_counter() - start
if kind == "tensorflow":
    np.save(reference, luma)
ran_at = precision if kind == "tensorflow" else fuser.session.precision if kind == "openvino" else fuser.metadata.precision
error = luma.astype(np.float64) - np.load(reference)
psnr = 10 * np.log10(255 ** 2 / np.mean(error ** 2)) if error.any() else float("inf")
print(json.dumps(dict(load_seconds=loaded, fps=frames / seconds, ms_per_frame=1000 * seconds / frames,
                      max_difference=float(np.abs(error).max()), psnr=psnr, ran_at=ran_at,
                      tensorflow_imported="tensorflow" in sys.modules)))
"""


def cpu_flags() -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` the first CPU in /proc/cpuinfo lists."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    return {"model": model, **{flag: flag in flags for flag in CPU_FLAGS}}


def export_all(checkpoint: str | None, folder: Path) -> dict[str, Path]:
    """Export the chain to every file of :data:`EXPORTS`, in a child process (this one stays free of TensorFlow)."""
    paths = {name: folder / f"chain-{name}{SUFFIXES[format]}" for name, (format, _) in EXPORTS.items()}
    code = ("import sys; from tf_twogan.export import export_model\n"
            "for format, precision, path in zip(sys.argv[2::3], sys.argv[3::3], sys.argv[4::3]):\n"
            "    export_model(sys.argv[1] or None, path, format=format, precision=precision)")
    arguments = [item for name, path in paths.items() for item in (*EXPORTS[name], str(path))]
    subprocess.run([sys.executable, "-c", code, checkpoint or "", *arguments], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return paths


def process_seconds(argv: list[str], repeats: int) -> dict[str, float]:
    """Median, min and max whole-process wall time of ``argv`` over ``repeats`` runs after one warm-up."""
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(argv, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run:
            times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="two-layer checkpoint (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=5, help="whole-process runs per start-up row")
    parser.add_argument("--frames", type=int, default=30, help="timed frames per throughput row")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    flags = cpu_flags()
    results = {"cpu": flags, "load_before": load_note(), "startup_seconds": {}, "throughput": {}}
    print(f"CPU: {flags['model']}; " + ", ".join(f"{flag} {'yes' if flags[flag] else 'no'}" for flag in CPU_FLAGS))
    print(f"before: {results['load_before']}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        models = export_all(args.checkpoint, scratch)
        fuse = [sys.executable, "-m", "tf_twogan.cli", "fuse", "--ir", str(PAIR[0]), "--vis", str(PAIR[1]),
                "--out", str(scratch / "fused.png"), "--quiet"]
        print(f"\nsingle-pair twogan fuse, whole process, 640x480 (median of {args.repeats}, min..max):")
        rows = [(f"--model {path.name} ({format})", [*fuse, "--model", str(path)]) for format, path in models.items()]
        rows.append(("TensorFlow (--checkpoint)", [*fuse, *(["--checkpoint", args.checkpoint] if args.checkpoint else [])]))
        for label, argv in rows:
            seconds = results["startup_seconds"][label] = process_seconds(argv, args.repeats)
            print(f"  {label:32s} {seconds['median']:6.2f} s  ({seconds['min']:.2f}..{seconds['max']:.2f})")
        print(f"\n640x480 fuse_arrays, {args.frames} frames after 2 warm-up calls; largest difference of the fused luma "
              "against TensorFlow float32:")
        reference = scratch / "reference.npy"
        for label, kind, precision in CONFIGURATIONS:
            model = (args.checkpoint or "") if kind == "tensorflow" else str(models[kind])
            done = subprocess.run([sys.executable, "-c", WORKER, kind, model, precision or "", str(args.frames), str(reference),
                                   *map(str, PAIR)], check=True, cwd=REPO, capture_output=True, text=True)
            row = results["throughput"][label] = json.loads(done.stdout.splitlines()[-1])
            print(f"  {label:24s} {row['fps']:6.1f} frames/s  {row['ms_per_frame']:6.1f} ms/frame  "
                  f"max diff {row['max_difference']:.4f} grey levels, PSNR {row['psnr']:.1f} dB  (runs at {row['ran_at']}; "
                  f"TensorFlow imported: {'yes' if row['tensorflow_imported'] else 'no'})")
    results["load_after"] = load_note()
    print(f"\nafter: {results['load_after']}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
