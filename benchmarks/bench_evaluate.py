"""``evaluate_folders`` with one thread against one per core, on the 10 TNO test pairs, in one run.

    python benchmarks/bench_evaluate.py [--repeats 2] [--json FILE]

Two fused folders (the ``average`` and ``max-select`` reference fusions, made once
into a temporary folder) are scored with the paper's eight metrics and TR, first
with ``workers=1`` and then with :func:`~tf_twogan.evaluate.default_workers` threads (one per core), alternately, ``--repeats``
times each; the best time of each is printed with their ratio, and the scores of
the two are checked to be equal.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import TNO, load_note, write_json
from tf_twogan.datasets import require_dataset

from tf_twogan.baselines import REFERENCE_FUSIONS, fuse_folder
from tf_twogan.evaluate import default_workers, evaluate_folders
from tf_twogan.images import split_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    require_dataset("tno")
    names = split_names("tno", "test")
    cores = default_workers()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        fused = [work / method for method in REFERENCE_FUSIONS]
        for method, folder in zip(REFERENCE_FUSIONS.values(), fused):
            fuse_folder(method, TNO / "ir", TNO / "vis", folder, names=names)
        print(f"{len(names)} TNO test pairs x {len(fused)} methods; {load_note()}")
        times: dict[int, list[float]] = {1: [], cores: []}
        scores = {}
        for repeat in range(args.repeats):
            for workers in times:
                start = time.perf_counter()
                result = evaluate_folders(TNO / "ir", TNO / "vis", fused, work / f"eval{workers}", progress=False,
                                          pairs=names, workers=workers)
                times[workers].append(time.perf_counter() - start)
                scores[workers] = result.per_image
    best = {workers: min(values) for workers, values in times.items()}
    same = scores[1] == scores[cores]
    print(f"workers=1: {best[1]:.2f} s; workers={cores}: {best[cores]:.2f} s; speed-up {best[1] / best[cores]:.2f}x; "
          f"scores identical: {same}; {load_note()}")
    write_json(args.json, {"pairs": len(names), "methods": len(fused), "cores": cores, "seconds": best,
                           "speedup": best[1] / best[cores], "identical": same, "load": load_note()})


if __name__ == "__main__":
    main()
