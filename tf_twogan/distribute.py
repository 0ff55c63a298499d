"""Choosing the ``tf.distribute`` strategy a run trains under, how BatchNorm follows it, and which process writes the run folder."""
from __future__ import annotations

import tensorflow as tf

from .config import ConfigError

STRATEGIES = ("default", "mirrored", "multiworker")


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
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


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
