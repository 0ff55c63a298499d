"""Start-up time of a single-pair ``twogan fuse`` from a cold process, with a breakdown.

Each measurement runs in a fresh interpreter (nothing cached in the process; the
OS file cache stays warm after the first run, as for a user who fuses twice):

- ``python``: an interpreter that does nothing (``python -c pass``);
- ``cli``: the whole ``twogan fuse`` of one 640x480-class sample pair (TNO 21);
- breakdown in one process: ``import tensorflow``, ``import tf_twogan.inference``
  (Keras, the package), ``Fuser()`` (the shipped checkpoint loaded and folded),
  the first ``fuse_arrays`` (tracing, oneDNN primitives) and a second one (warm).

It also lists which heavy modules the fuse path imported.  The load average is
printed beside the numbers.

    python benchmarks/bench_startup.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import REPO, load_note, write_json

SAMPLE = REPO / "tf_twogan" / "samples"
HEAVY = ("matplotlib", "scipy", "h5py", "PIL", "pandas", "tqdm", "keras", "tensorboard")

BREAKDOWN = f"""
import json, sys, time
start = time.perf_counter()
from tf_twogan.console import import_tensorflow_quietly
import_tensorflow_quietly()
t_tf = time.perf_counter()
from tf_twogan.images import read_image
from tf_twogan.inference import Fuser
t_import = time.perf_counter()
fuser = Fuser()
t_fuser = time.perf_counter()
ir, vis = read_image({str(SAMPLE / 'ir' / 'tno_21.png')!r}), read_image({str(SAMPLE / 'vis' / 'tno_21.png')!r})
fuser.fuse_arrays(ir, vis)
t_first = time.perf_counter()
fuser.fuse_arrays(ir, vis)
t_second = time.perf_counter()
print(json.dumps(dict(import_tensorflow=t_tf - start, import_package=t_import - t_tf, fuser=t_fuser - t_import,
                      first_call=t_first - t_fuser, warm_call=t_second - t_first,
                      heavy_modules=[m for m in {HEAVY!r} if m in sys.modules])))
"""


def wall(argv: list[str]) -> float:
    """Wall seconds of a fresh process running ``argv`` (fails loudly if it fails)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="/tmp/bench_startup_fused.png", help="where the CLI run writes its image")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    print(f"{load_note()} (start)")
    python = [wall([sys.executable, "-c", "pass"]) for _ in range(args.repeats)]
    cli = [wall([sys.executable, "-m", "tf_twogan.cli", "fuse", "--ir", str(SAMPLE / "ir" / "tno_21.png"),
                 "--vis", str(SAMPLE / "vis" / "tno_21.png"), "--out", args.out]) for _ in range(args.repeats)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    parts = [json.loads(subprocess.run([sys.executable, "-c", BREAKDOWN], check=True, capture_output=True, text=True,
                                       env=env).stdout.splitlines()[-1]) for _ in range(args.repeats)]
    results = dict(python_start=statistics.median(python), twogan_fuse_single_pair=statistics.median(cli),
                   **{key: statistics.median(p[key] for p in parts) for key in parts[0] if key != "heavy_modules"},
                   heavy_modules=parts[0]["heavy_modules"])
    for key, value in results.items():
        print(f"{key:>24}: {value:.3f} s" if isinstance(value, float) else f"{key:>24}: {value}")
    print(f"(medians of {args.repeats}; {load_note()})")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
