"""tf.distribute: MirroredStrategy over two logical CPUs, MultiWorkerMirroredStrategy over two local processes.

Logical devices and collective ops must be configured before TensorFlow starts, so
each case runs in fresh Python processes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, TINY_CHAIN, TNO, gan3_train_argv


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

# One SGD step of GAN 1 on the same global batch of 4 under the default strategy and
# under MirroredStrategy over two logical CPUs (2 patches per replica), from the same
# initial weights.  SGD moves each weight by lr * gradient, so the update compares the
# gradients themselves (Adam would hide a constant factor such as a missing
# 1/num_replicas).  The control "default_sync" is the default strategy with the
# synchronized BatchNorm formula (E[x^2] - E[x]^2 instead of two passes): the same
# mathematics with other float rounding, showing how much rounding alone moves the
# update.  The two-layer chain through train_pair under a distributed strategy is the
# multi-worker test's; FusionGAN under the mirrored strategy is FUSIONGAN_MIRRORED_SCRIPT's.
MIRRORED_SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tf_twogan.config import preset
from tf_twogan.data import PatchStream
from tf_twogan.distribute import needs_synchronized_batch_norm
from tf_twogan.gan import GAN1
from tf_twogan.training import build_pair, configure_runtime

store = Path(sys.argv[1])
tiny = {"generator": {"widths": (4, 4, 4, 4)}, "discriminator": {"widths": (4, 4, 8, 8)}}
config = preset("lite").replace(**tiny, train={"batch_size": 4, "epochs": 2, "steps_per_epoch": 2, "seed": 1})
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = {"replicas": mirrored.num_replicas_in_sync}
for name, strategy in (("default", tf.distribute.get_strategy()), ("mirrored", mirrored), ("default_sync", tf.distribute.get_strategy())):
    configure_runtime(1)
    with strategy.scope():
        pair = build_pair(config, GAN1, 128, name == "default_sync" or needs_synchronized_batch_norm(strategy))
        pair.compile(keras.optimizers.SGD(1e-2), keras.optimizers.SGD(1e-2))
    variables = pair.generator.trainable_weights + pair.discriminator.trainable_weights
    before = [v.numpy().copy() for v in variables]
    logs = pair.fit(PatchStream(store, GAN1.kinds, 4, seed=1).dataset(), epochs=1, steps_per_epoch=1, verbose=0).history
    result[name] = {"update": np.concatenate([(v.numpy() - b).ravel() for v, b in zip(variables, before)]).tolist(),
                    "losses": {k: float(v[-1]) for k, v in logs.items()},
                    "synchronized": [l.synchronized for l in pair.generator.hidden_layers if hasattr(l, "synchronized")]}
print("RESULT" + json.dumps(result))
"""

# A FusionGAN pair (random soft labels, spectral normalisation) trains two epochs through
# train_pair (run folder, callbacks, Keras' own pre-fit batch reduce) under MirroredStrategy
# over two logical CPUs.  About 15 s of CPU, most of it TensorFlow optimising the
# two-replica graph before its first step: marked slow.
FUSIONGAN_MIRRORED_SCRIPT = r"""
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tf_twogan.config import preset
from tf_twogan.gan import FUSIONGAN
from tf_twogan.training import load_network, open_run_folder, train_pair

out, fusion_store = Path(sys.argv[1]), Path(sys.argv[2])
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
tiny = {"generator": {"widths": (4, 4, 4, 4)}, "discriminator": {"widths": (4, 4, 8, 8)}}
fusiongan = preset("lite", "fusiongan").replace(**tiny, train={"batch_size": 4, "epochs": 2, "steps_per_epoch": 1, "seed": 1})
run = open_run_folder(out / "fusiongan", fusiongan)
train_pair(run, fusion_store, fusiongan, FUSIONGAN, verbose=0, strategy=mirrored)
result = {"fusiongan_history": run.history(FUSIONGAN).read_text().splitlines(),
          "reloaded": type(load_network(run.network(FUSIONGAN, "g"))).__name__}
print("RESULT" + json.dumps(result))
"""


def run_script(script: str, *args: str, timeout: float = 400) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


LOSSES = ("d_loss", "d_real", "d_fake", "g_loss", "g_adversarial", "g_content", "g_intensity", "g_gradient")


def relative_difference(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def rows(lines: list[str]) -> list[dict[str, str]]:
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_mirrored_over_two_logical_cpus_matches_the_default_strategy(mini_store):
    result = run_script(MIRRORED_SCRIPT, str(mini_store))
    assert result["replicas"] == 2
    default, mirrored, control = result["default"], result["mirrored"], result["default_sync"]
    assert default["synchronized"] == [False] * 4 and mirrored["synchronized"] == [True] * 4 == control["synchronized"]
    # the losses the trackers report: per-replica means averaged = the global batch's
    for name in LOSSES:
        a, b = default["losses"][name], mirrored["losses"][name]
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (name, a, b)
    # the update (lr * gradient): as close as float rounding alone makes it.  Measured:
    # mirrored 1.8e-4, rounding control 1.1e-4; without synchronized BatchNorm 1.2, and a
    # missing 1/num_replicas would give 1.0.
    rounding = relative_difference(default["update"], control["update"])
    distributed = relative_difference(default["update"], mirrored["update"])
    print(f"SGD update: mirrored vs default {distributed:.2e}; rounding control {rounding:.2e}")
    assert distributed <= 1e-3 and rounding <= 1e-3


@pytest.mark.slow
@pytest.mark.needs_data("tno")
def test_a_fusiongan_pair_trains_through_train_pair_under_the_mirrored_strategy(mini_split, tmp_path):
    from tf_twogan.store import prepare_store

    fusion_store = prepare_store(TNO / "ir", TNO / "vis", tmp_path / "fusion.h5", split=mini_split, patch_size=132,
                                 stride=100, progress=False)
    result = run_script(FUSIONGAN_MIRRORED_SCRIPT, str(tmp_path / "runs"), str(fusion_store))
    history = rows(result["fusiongan_history"])
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert all(np.isfinite(float(row[name])) for row in history for name in LOSSES)
    assert result["reloaded"] == "Generator"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def writable_fds(pid: int) -> set[str]:
    """Paths this process has open for writing now (from /proc/<pid>/fdinfo flags)."""
    paths = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return paths
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            flags = int(Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue
        if target.startswith("/") and flags & (os.O_WRONLY | os.O_RDWR):
            paths.add(target)
    return paths


def test_multiworker_on_localhost_completes_and_only_the_chief_writes_the_run_folder(mini_store, tiny_run, tmp_path):
    # GAN 3 of the lite chain at tiny widths on the session's finished first layer (the
    # same train_pair as GANs 1 and 2): both workers must adopt it, or the other worker
    # would train GAN 1 while the chief trains GAN 3
    run, config = tmp_path / "run", TINY_CHAIN.replace(second_layer={"epochs": 2}).to_json(tmp_path / "tiny.json")
    ports = free_ports(2)
    worker_tmp = [tmp_path / f"tmp{index}" for index in range(2)]
    processes = []
    for index in range(2):
        worker_tmp[index].mkdir()
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        env = {**ENV, "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(worker_tmp[index])}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tf_twogan.cli", *gan3_train_argv(mini_store, run, config, tiny_run),
             "--strategy", "multiworker"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    written = [set(), set()]
    deadline = time.monotonic() + 500
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        for index, process in enumerate(processes):
            written[index] |= writable_fds(process.pid)
        time.sleep(0.05)
    outputs = []
    for process in processes:
        if process.poll() is None:
            process.kill()
        outputs.append(process.communicate()[0])
    assert [p.returncode for p in processes] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    names = {path.name for path in run.iterdir()}
    assert {"config.json", "g1.keras", "g2.keras", "g3.keras", "d1.keras", "d2.keras", "d3.keras",
            "history_gan1.csv", "history_gan2.csv", "history_gan3.csv", "second_layer_store.h5", "logs"} <= names
    assert not (run / "backup").exists()
    for stage, epochs in (("gan1", ["0"]), ("gan2", ["0"]), ("gan3", ["0", "1"])):
        assert [line.split(",")[0] for line in (run / f"history_{stage}.csv").read_text().splitlines()[1:]] == epochs
    # the chief held files of the run folder open for writing; the other worker never did,
    # it wrote to its own temporary folder, which is gone now
    in_run = [{path for path in paths if path.startswith(str(run) + "/")} for paths in written]
    assert in_run[0], "the polling saw no write by the chief (sampling too coarse?)"
    assert in_run[1] == set(), in_run[1]
    assert any("twogan_worker1_" in path for path in written[1]), sorted(written[1])[:10]
    assert list(worker_tmp[1].glob("twogan_worker*")) == []
    from tf_twogan.training import load_generators

    assert [g.name for g in load_generators(run)] == ["g1", "g2", "g3"]
