"""Side by side: FusionGAN's original test computation against our chain, one 640x480 pair.

``original``: the graph of FusionGAN's ``test_one_image.py`` (github:jiayi-ma/FusionGAN)
rebuilt in ``tf.compat.v1`` graph mode: input scaled to [-1, 1] and edge-padded by 6,
five VALID convs (5x5 2->256, 5x5 256->128, 3x3 128->64, 3x3 64->32, 1x1 32->1)
with bias, ``tf.contrib.layers.batch_norm`` in its default training mode (batch
statistics, moving averages updated in place, i.e. ``fused_batch_norm`` plus two
assignments), ``lrelu = max(x, 0.2 x)``, tanh; one ``Session.run`` per pair, timed
like the script (input set-up + run).  ``ours``: ``Fuser`` on the paper widths, whole
image.  Random weights of the right shapes (speed does not depend on them).  Each
side runs in its own fresh process, alternating, so both see the same load.

    python benchmarks/bench_vs_fusiongan.py --rounds 2 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HEIGHT, WIDTH = 480, 640
ORIGINAL_LAYERS = ((5, 2, 256), (5, 256, 128), (3, 128, 64), (3, 64, 32), (1, 32, 1))


def original_worker(repeats: int) -> dict:
    import numpy as np
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    rng = np.random.default_rng(0)
    images = tf.placeholder(tf.float32, [1, None, None, 2])
    x = images
    for index, (k, c_in, c_out) in enumerate(ORIGINAL_LAYERS, start=1):
        with tf.variable_scope(f"layer{index}"):
            weights = tf.get_variable("w", initializer=tf.constant(rng.normal(0, 0.02, (k, k, c_in, c_out)).astype(np.float32)))
            bias = tf.get_variable("b", initializer=tf.zeros([c_out]))
            x = tf.nn.conv2d(x, weights, strides=[1, 1, 1, 1], padding="VALID") + bias
            if index < len(ORIGINAL_LAYERS):  # tf.contrib.layers.batch_norm(decay=0.9, updates_collections=None, epsilon=1e-5, scale=True)
                gamma = tf.get_variable("gamma", initializer=tf.ones([c_out]))
                beta = tf.get_variable("beta", initializer=tf.zeros([c_out]))
                moving_mean = tf.get_variable("moving_mean", initializer=tf.zeros([c_out]), trainable=False)
                moving_variance = tf.get_variable("moving_variance", initializer=tf.ones([c_out]), trainable=False)
                x, mean, variance = tf.nn.fused_batch_norm(x, gamma, beta, epsilon=1e-5, is_training=True)
                updates = [tf.assign(moving_mean, 0.9 * moving_mean + 0.1 * mean),
                           tf.assign(moving_variance, 0.9 * moving_variance + 0.1 * variance)]
                with tf.control_dependencies(updates):
                    x = tf.identity(x)
                x = tf.maximum(x, 0.2 * x)
    fused = tf.nn.tanh(x)
    ir, vis = (rng.uniform(0, 255, (HEIGHT, WIDTH)) for _ in range(2))
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())

        def run():
            pair = [np.pad((image - 127.5) / 127.5, 6, mode="edge")[None, ..., None] for image in (ir, vis)]
            return session.run(fused, {images: np.concatenate(pair, axis=-1)}) * 127.5 + 127.5

        assert run().shape == (1, HEIGHT, WIDTH, 1)
        times = []
        for _ in range(repeats):
            start = time.time()
            run()
            times.append(time.time() - start)
    flops = 2 * sum(k * k * c_in * c_out for k, c_in, c_out in ORIGINAL_LAYERS) * HEIGHT * WIDTH
    return {"side": "original FusionGAN test graph, float32", "seconds": statistics.median(times), "gflop": flops / 1e9}


def ours_worker(repeats: int, precision: str) -> dict:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_inference import pair, random_chain  # noqa: E402

    from tf_twogan.config import preset
    from tf_twogan.inference import Fuser

    chain = random_chain(preset("paper").generator.widths)
    fuser = Fuser(generators=chain, precision=precision, tile=0)
    ir, vis = pair()
    fuser.fuse_arrays(ir, vis)
    times = []
    for _ in range(repeats):
        start = time.time()
        fuser.fuse_arrays(ir, vis)
        times.append(time.time() - start)
    flops = 3 * chain[0].flops_per_pixel() * HEIGHT * WIDTH
    return {"side": f"ours, paper chain, {precision}", "seconds": statistics.median(times), "gflop": flops / 1e9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of (original, ours float32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs per process after one warm-up")
    parser.add_argument("--bfloat16", action="store_true", help="also time ours with --precision bfloat16")
    parser.add_argument("--worker", choices=("original", "float32", "bfloat16"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.worker:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = original_worker(args.repeats) if args.worker == "original" else ours_worker(args.repeats, args.worker)
        print("RESULT " + json.dumps(result))
        return 0
    sides = ["original", "float32"] + (["bfloat16"] if args.bfloat16 else [])
    results = []
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for round_index in range(args.rounds):
        for side in sides:
            done = subprocess.run([sys.executable, __file__, "--worker", side, "--repeats", str(args.repeats)],
                                  capture_output=True, text=True, env=environment)
            line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{side} worker failed:\n{done.stderr[-3000:]}")
            result = json.loads(line[7:]) | {"round": round_index, "load_average": os.getloadavg()[0]}
            results.append(result)
            print(f"round {round_index}  {result['side']:42} {1e3 * result['seconds']:9.1f} ms/pair  "
                  f"{result['gflop']:6.0f} GFLOP  {result['gflop'] / result['seconds']:6.1f} GFLOP/s  "
                  f"load {result['load_average']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
