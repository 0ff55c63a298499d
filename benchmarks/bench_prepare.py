"""Time `twogan prepare` on the whole TNO training split (goal: at most 30 s, 36,829 patch pairs).

Usage: python benchmarks/bench_prepare.py [--out /tmp/tno_train.h5]
"""
from __future__ import annotations

import argparse
import time

from common import TNO, load_note
from tf_twogan.datasets import require_dataset
from tf_twogan.store import PatchStore, prepare_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/tno_train_bench.h5")
    args = parser.parse_args()
    require_dataset("tno")
    print(load_note())
    start = time.perf_counter()
    path = prepare_store(TNO / "ir", TNO / "vis", args.out, split="tno", subset="train", progress=False)
    seconds = time.perf_counter() - start
    with PatchStore(path) as store:
        count = len(store)
    size = path.stat().st_size / 1e6
    print(f"prepare TNO train: {count} patch pairs in {seconds:.1f} s ({count / seconds:.0f} pairs/s), "
          f"store {size:.0f} MB; goal <= 30 s: {'met' if seconds <= 30 else 'NOT met'}")
    print(load_note())


if __name__ == "__main__":
    main()
