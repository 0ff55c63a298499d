"""Choosing the ``tf.distribute`` strategy a run trains under, how BatchNorm follows it, and which process writes the run folder."""
from __future__ import annotations

import json
import os
import socket
import sys
import time

import tensorflow as tf

from .config import ConfigError

STRATEGIES = ("default", "mirrored", "multiworker")

# seconds a worker waits for the others to listen; TWOGAN_CLUSTER_TIMEOUT overrides it
CLUSTER_TIMEOUT = 600.0


def make_strategy(strategy: str | tf.distribute.Strategy | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named ``default``, ``mirrored`` or ``multiworker`` (or the one given).

    ``mirrored``: one replica per local GPU (or the CPU), gradients all-reduced.
    ``multiworker``: MultiWorkerMirroredStrategy over the hosts in ``TF_CONFIG``; it
    must be created before TensorFlow runs any op, as :func:`tf_twogan.training.train` does.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy in (None, "default"):
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multiworker":
        check_cluster(os.environ.get("TF_CONFIG"))
        wait_for_peers(os.environ["TF_CONFIG"], cluster_timeout())
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def check_cluster(tf_config: str | None) -> None:
    """Refuse a ``TF_CONFIG`` that gives no cluster of two or more workers, or no valid task, in one line.

    Without one, MultiWorkerMirroredStrategy runs a one-worker "cluster" that failed
    inside Keras' TensorBoard callback, and a malformed value gave a long traceback.
    """
    prefix = "--strategy multiworker: TF_CONFIG"
    if not tf_config:
        raise ConfigError(f"{prefix} is not set; it must name the cluster's workers and this process's task "
                          "(README, Multi-worker training)")
    try:
        spec = json.loads(tf_config)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{prefix} is not valid JSON ({error})") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not all(isinstance(tasks, list) for tasks in cluster.values()):
        raise ConfigError(f"{prefix} has no \"cluster\" mapping task types to lists of host:port")
    if sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) < 2:
        raise ConfigError(f"{prefix} names one worker; use --strategy default or mirrored on one host")
    task = spec.get("task")
    if (not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(cluster[task["type"]])):
        raise ConfigError(f"{prefix} \"task\" {task!r} is not one of the cluster's tasks")


def cluster_timeout() -> float:
    """Seconds to wait for the other workers: ``TWOGAN_CLUSTER_TIMEOUT`` if set, else :data:`CLUSTER_TIMEOUT`."""
    text = os.environ.get("TWOGAN_CLUSTER_TIMEOUT")
    if text is None:
        return CLUSTER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"TWOGAN_CLUSTER_TIMEOUT must be a positive number of seconds, got {text!r}")
    return seconds


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--strategy multiworker: TF_CONFIG address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def wait_for_peers(tf_config: str, timeout: float) -> None:
    """Listen on this task's port and wait, at most ``timeout`` seconds, until every other worker's port answers.

    MultiWorkerMirroredStrategy's constructor waits for the whole cluster inside
    TensorFlow, holding the interpreter: forever, deaf to Ctrl-C and SIGTERM, when a
    peer never comes.  Here the wait is Python's, so signals stop it, and it ends
    with a :class:`ConfigError` naming the peers that did not answer.  Every worker
    listens meanwhile (a plain socket on its own port, closed before TensorFlow binds
    it), so all workers see each other before any of them starts TensorFlow's server.
    """
    spec = json.loads(tf_config)
    cluster, task = spec["cluster"], spec["task"]
    own = cluster[task["type"]][task["index"]]
    peers = [address for kind in ("chief", "worker") for address in cluster.get(kind, []) if address != own]
    port = _host_port(own)[1]
    try:
        listener = socket.create_server(("", port))
    except OSError as error:
        raise ConfigError(f"--strategy multiworker: this task's address {own} (TF_CONFIG) cannot be listened on: "
                          f"{error.strerror or error}") from None
    deadline, told = time.monotonic() + timeout, False
    with listener:
        while True:
            missing = [address for address in peers if not _answers(address)]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise ConfigError(f"--strategy multiworker: worker(s) {', '.join(missing)} named in TF_CONFIG not "
                                  f"reachable after {timeout:g} s; start the same command on every worker "
                                  "(or raise TWOGAN_CLUSTER_TIMEOUT)")
            if not told:
                print(f"waiting up to {timeout:g} s for worker(s) {', '.join(missing)} (TF_CONFIG)", file=sys.stderr, flush=True)
                told = True
            time.sleep(0.5)


def _answers(address: str) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (within a second)."""
    try:
        with socket.create_connection(_host_port(address), timeout=1.0):
            return True
    except OSError:
        return False


def needs_synchronized_batch_norm(strategy: tf.distribute.Strategy) -> bool:
    """Whether networks trained under ``strategy`` need synchronized BatchNorm: with several replicas.

    Each replica sees only its share of the global batch; synchronized BatchNorm
    normalises with the global batch's statistics, so a mirrored run trains like one
    device (docs/DESIGN.md section 11).  With one replica the plain, faster layer.
    """
    return strategy.num_replicas_in_sync > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster (``TF_CONFIG``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type or task_type == "chief":
        return True
    return task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
