"""Training-iteration benchmark: patches/s and achieved GFLOP/s against a 3x3 conv ceiling.

One iteration is what ``AdversarialPair.train_step`` does per batch: two D updates,
then one G update, batch 32, on a fixed batch of real TNO patches (the first 32 of a
store made by ``twogan prepare``: 128x128 for ``paper``/``lite``, 132x132 for
``fusiongan``).  The step runs as ``tf.function(pair.train_step)``, optionally with
``jit_compile=True`` (XLA), in float32 and in ``mixed_bfloat16``.

FLOPs are counted analytically from the layer shapes (convolutions and the linear
unit only; BatchNorm, activations, the Laplacian, spectral-norm power iterations and
the optimizer are not counted), as the work the step actually does:

    forward of a conv  = 2 * k * k * c_in * c_out * H_out * W_out   (per image)
    G                  = G_fwd + G_fwd (weight gradients) + G_fwd - G_first (input
                         gradients, not needed below the first layer)
    two D updates      = 2 * 3 * (D_fwd(real) + D_fwd(fused))
    D inside G's loss  = D_fwd + D_fwd (input gradients only)

all times the batch.  G runs forward once per batch (``AdversarialPair.train_step``).
The original FusionGAN loop recomputes G in each of its two D ``sess.run`` calls and
again in its G call; the issue's 4.56 TFLOP per iteration counts it as
``2 * G_fwd + 2 * 3 * 2 * D_fwd + 3 * (G_fwd + D_fwd)``, and ``original_flop``
reports that figure for the FusionGAN mode.

Two ceilings are measured in the same process:

* ``conv``: forward + backward of one 3x3 valid conv of the generator's second layer
  shape (256 -> 128 channels, batch 32, 130x130 -> 128x128), counted with the same
  formula (3 * forward): the speed of the best-shaped layer;
* ``chain`` (per config): forward + backward of the generator's conv stack alone at
  the config's shapes (no bias, BatchNorm, activation or discriminator), counted as
  G above: the speed these convolutions can reach here, so ``% of chain`` is the
  share of time the step spends on its own convolutions at that speed.

Usage (prints a Markdown table and the load average at each measurement)::

    python benchmarks/bench_training.py                      # everything
    python benchmarks/bench_training.py --configs fusiongan --precisions float32 --xla off
    python benchmarks/bench_training.py --json results/bench_training.json
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import TNO, write_json  # noqa: E402
from tf_twogan.datasets import require_dataset  # noqa: E402

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TWOGAN_BENCH_CACHE", "/tmp/tf_twogan_bench"))
CONFIGS = ("paper", "lite", "fusiongan")
PRECISIONS = ("float32", "mixed_bfloat16")
BATCH = 32


def load() -> str:
    """The 1/5/15-minute load averages, printed beside every timing."""
    return "load %.2f %.2f %.2f" % os.getloadavg()


def store_for(method: str) -> Path:
    """The TNO training store of ``method`` (made once with ``twogan prepare``, cached)."""
    path = CACHE / f"tno_train_{method}.h5"
    if not path.is_file():
        require_dataset("tno")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "tf_twogan.cli", "prepare", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"),
                        "--out", str(path), "--split", "tno", "--subset", "train", "--method", method,
                        "--quiet"], check=True, cwd=REPO)
    return path


def fixed_batch(store_path: Path, kinds, batch: int = BATCH):
    """The first ``batch`` patches as the trainer sees a batch: the kinds stacked on the channel axis, float32 0..255."""
    import tensorflow as tf

    from tf_twogan.store import PatchStore

    with PatchStore(store_path, kinds) as store:
        return tf.constant(np.concatenate([store.read(kind, 0, batch) for kind in kinds], axis=-1), tf.float32)


def conv_flops(k: int, c_in: int, c_out: int, h_out: int, w_out: int) -> int:
    return 2 * k * k * c_in * c_out * h_out * w_out


def generator_convs(settings, size: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(input side, [(k, c_in, c_out, output side)] per conv incl. the 1x1) for a square ``size`` patch."""
    margin = sum((k - 1) // 2 for k in settings.kernel_sizes)
    side = size + (2 * margin if settings.pad_mode == "reflect" else 0)
    channels = [1 if settings.input_mode == "single" else 2, *settings.widths, 1]
    convs, out = [], side
    for k, c_in, c_out in zip([*settings.kernel_sizes, 1], channels, channels[1:]):
        out -= k - 1
        convs.append((k, c_in, c_out, out))
    return side, convs


def generator_layer_flops(settings, size: int) -> list[int]:
    """FLOPs of each conv of one forward pass per image, for a square ``size`` patch."""
    return [conv_flops(k, c_in, c_out, out, out) for k, c_in, c_out, out in generator_convs(settings, size)[1]]


def generator_output_side(settings, size: int) -> int:
    return generator_convs(settings, size)[1][-1][3]


def generator_train_flops(settings, size: int) -> int:
    """Forward, weight gradients and input gradients (none below the first layer) per image."""
    layers = generator_layer_flops(settings, size)
    return 3 * sum(layers) - layers[0]


def discriminator_forward_flops(settings, size: int) -> int:
    channels, side, flops = [1, *settings.widths], size, 0
    for c_in, c_out in zip(channels, channels[1:]):
        side = (side - 3) // 2 + 1
        flops += conv_flops(3, c_in, c_out, side, side)
    return flops + 2 * side * side * channels[-1]


def iteration_flops(config, patch: int, batch: int = BATCH) -> int:
    """Analytic FLOPs of one iteration of ``AdversarialPair.train_step`` (module docstring)."""
    d = discriminator_forward_flops(config.discriminator, generator_output_side(config.generator, patch))
    steps = config.train.discriminator_steps
    return batch * (generator_train_flops(config.generator, patch) + steps * 3 * 2 * d + 2 * d)


def original_iteration_flops(config, patch: int, batch: int = BATCH) -> int:
    """The issue's count for the original FusionGAN loop (G recomputed in every ``sess.run``)."""
    g = sum(generator_layer_flops(config.generator, patch))
    d = discriminator_forward_flops(config.discriminator, generator_output_side(config.generator, patch))
    steps = config.train.discriminator_steps
    return batch * (steps * g + steps * 3 * 2 * d + 3 * (g + d))


def timed(function, iterations: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        _sync(function())
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        _sync(function())
        times.append(time.perf_counter() - start)
    return times


def _sync(result) -> None:
    import tensorflow as tf

    for value in tf.nest.flatten(result):
        np.asarray(value)


def conv_ceiling(precision: str, iterations: int = 2, batch: int = BATCH) -> dict:
    """GFLOP/s of forward + backward of a 3x3 conv 256 -> 128, batch 32, 130x130 -> 128x128."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, 130, 130, 256), dtype=np.float32), dtype=dtype)
    w = tf.Variable(tf.constant(rng.standard_normal((3, 3, 256, 128), dtype=np.float32) * 0.02, dtype=dtype))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, w, strides=1, padding="VALID")
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return tape.gradient(loss, [x, w])

    flops = 3 * batch * conv_flops(3, 256, 128, 128, 128)
    times = timed(step, iterations, warmup=1)
    best = min(times)
    return {"precision": precision, "seconds": best, "gflops": flops / best / 1e9, "flop": flops, "load": load()}


def chain_ceiling(config, precision: str, iterations: int = 2, batch: int = BATCH) -> dict:
    """GFLOP/s of forward + backward of the generator's bare conv stack (valid convs, no bias)."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    settings, patch = config.generator, config.data.patch_size
    rng = np.random.default_rng(0)
    side, convs = generator_convs(settings, patch)
    x = tf.constant(rng.standard_normal((batch, side, side, convs[0][1]), dtype=np.float32), dtype=dtype)
    weights = [tf.Variable(tf.constant(rng.standard_normal((k, k, c_in, c_out), dtype=np.float32) * 0.05, dtype=dtype))
               for k, c_in, c_out, _ in convs]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            y = x
            for w in weights:
                y = tf.nn.conv2d(y, w, strides=1, padding="VALID")
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return tape.gradient(loss, weights)

    flops = batch * generator_train_flops(settings, patch)
    best = min(timed(step, iterations, warmup=1))
    return {"seconds": best, "gflops": flops / best / 1e9}


def bench_config(name: str, precision: str, xla: bool, iterations: int, warmup: int) -> dict:
    import keras
    import tensorflow as tf

    from tf_twogan.config import preset
    from tf_twogan.gan import FUSIONGAN, GAN1
    from tf_twogan.training import build_pair, configure_runtime

    method = "fusiongan" if name == "fusiongan" else "twogan"
    config = preset("paper" if name in ("paper", "fusiongan") else "lite", method)
    config = config.replace(train={"batch_size": BATCH, "precision": precision})
    roles = FUSIONGAN if method == "fusiongan" else GAN1
    configure_runtime(None, precision)
    try:
        pair = build_pair(config, roles)
        pair.generator_optimizer.build(pair.generator.trainable_variables)
        pair.discriminator_optimizer.build(pair.discriminator.trainable_variables)
        batch = fixed_batch(store_for(method), roles.kinds)
        step = tf.function(pair.train_step, jit_compile=xla)
        start = time.perf_counter()
        _sync(step(batch))
        first = time.perf_counter() - start
        times = timed(lambda: step(batch), iterations, warmup)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    flops = iteration_flops(config, config.data.patch_size)
    chain = chain_ceiling(config, precision)
    best, median = min(times), float(np.median(times))
    return {"config": name, "precision": precision, "xla": xla, "first_call_s": first, "seconds": best, "median_s": median,
            "times": times, "patches_per_s": BATCH / best, "flop": flops, "gflops": flops / best / 1e9,
            "original_flop": original_iteration_flops(config, config.data.patch_size) if name == "fusiongan" else None,
            "chain_gflops": chain["gflops"], "chain_fraction": flops / best / 1e9 / chain["gflops"], "load": load()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--xla", choices=("off", "on", "both"), default="both")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations (the best is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations after the first (tracing) call")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, {load()}", flush=True)
    precisions = args.precisions.split(",")
    results = {"ceiling": [], "runs": []}
    if not args.no_ceiling:
        for precision in precisions:
            results["ceiling"].append(conv_ceiling(precision))
            c = results["ceiling"][-1]
            print(f"ceiling {precision}: {c['gflops']:.1f} GFLOP/s ({c['seconds']:.2f} s, {c['flop'] / 1e12:.3f} TFLOP) [{c['load']}]", flush=True)
    ceilings = {c["precision"]: c["gflops"] for c in results["ceiling"]}
    for name in args.configs.split(","):
        for precision in precisions:
            for xla in {"off": [False], "on": [True], "both": [False, True]}[args.xla]:
                try:
                    run = bench_config(name, precision, xla, args.iterations, args.warmup)
                except Exception as error:  # XLA may refuse an op: report and continue
                    run = {"config": name, "precision": precision, "xla": xla, "error": f"{type(error).__name__}: {str(error)[:300]}",
                           "load": load()}
                    print(f"{name} {precision} xla={xla}: FAILED {run['error']} [{run['load']}]", flush=True)
                    results["runs"].append(run)
                    continue
                if precision in ceilings:
                    run["ceiling_fraction"] = run["gflops"] / ceilings[precision]
                results["runs"].append(run)
                fraction = f", {100 * run['ceiling_fraction']:.0f}% of ceiling" if "ceiling_fraction" in run else ""
                fraction += f", {100 * run['chain_fraction']:.0f}% of its conv chain ({run['chain_gflops']:.1f} GFLOP/s)"
                print(f"{name} {precision} xla={xla}: {run['seconds']:.2f} s/iter (median {run['median_s']:.2f}, first call "
                      f"{run['first_call_s']:.1f} s), {run['patches_per_s']:.2f} patches/s, {run['flop'] / 1e12:.3f} TFLOP/iter, "
                      f"{run['gflops']:.1f} GFLOP/s{fraction} [{run['load']}]", flush=True)
    print("\n| config | precision | XLA | s/iter | patches/s | TFLOP/iter | GFLOP/s | % of conv ceiling | conv chain GFLOP/s | % of chain | load (1/5/15 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in results["runs"]:
        if "error" in run:
            print(f"| {run['config']} | {run['precision']} | {'on' if run['xla'] else 'off'} | failed | | | | | | | {run['load'][5:]} |")
            continue
        fraction = f"{100 * run['ceiling_fraction']:.0f}%" if "ceiling_fraction" in run else ""
        print(f"| {run['config']} | {run['precision']} | {'on' if run['xla'] else 'off'} | {run['seconds']:.2f} | "
              f"{run['patches_per_s']:.2f} | {run['flop'] / 1e12:.3f} | {run['gflops']:.1f} | {fraction} | {run['chain_gflops']:.1f} | "
              f"{100 * run['chain_fraction']:.0f}% | {run['load'][5:]} |")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
