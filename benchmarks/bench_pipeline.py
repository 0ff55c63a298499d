"""Does the tf.data stream keep training fed?  Batches/s delivered vs batches/s a training step consumes.

Both are measured in this process on the same store with batch 32: the stream alone
(iterating ``PatchStream.dataset()``), and one training iteration (2 D + 1 G updates)
of the ``lite`` preset (the fastest consumer, so the strictest test) and, with
``--paper``, of the ``paper`` preset.  Goal: the stream at least 10x faster.

Usage: python benchmarks/bench_pipeline.py [--store STORE.h5] [--paper]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import TNO, load_note  # noqa: E402
from tf_twogan.datasets import require_dataset  # noqa: E402


def stream_rate(store: str, batches: int) -> float:
    from tf_twogan.data import PatchStream

    iterator = iter(PatchStream(store, ("ir", "vis"), batch_size=32, seed=0).dataset())
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def step_rate(store: str, preset_name: str, steps: int) -> float:
    import tensorflow as tf

    from tf_twogan.config import preset
    from tf_twogan.data import PatchStream
    from tf_twogan.gan import GAN1
    from tf_twogan.training import build_pair

    pair = build_pair(preset(preset_name), GAN1)
    batch = tf.constant(next(PatchStream(store, GAN1.kinds, 32).batches()))
    step = tf.function(pair.train_step)
    step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="/tmp/tno_train_bench.h5", help="made by bench_prepare.py if missing")
    parser.add_argument("--paper", action="store_true", help="also time a paper-preset step (slow on CPU)")
    args = parser.parse_args()
    if not os.path.exists(args.store):
        from tf_twogan.store import prepare_store

        require_dataset("tno")
        prepare_store(TNO / "ir", TNO / "vis", args.store, split="tno", subset="train", progress=False)
    print(load_note())
    delivered = stream_rate(args.store, 300)
    print(f"stream: {delivered:.1f} batches/s of 32 patch pairs ({32 * delivered:.0f} pairs/s)")
    for name in ("lite", "paper") if args.paper else ("lite",):
        consumed = step_rate(args.store, name, 10 if name == "lite" else 3)
        print(f"{name} training iteration: {consumed:.2f} batches/s -> stream is {delivered / consumed:.0f}x faster "
              f"(goal >= 10x: {'met' if delivered >= 10 * consumed else 'NOT met'})")
    print(load_note())


if __name__ == "__main__":
    main()
