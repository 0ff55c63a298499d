"""The two-stage training protocol (docs/DESIGN.md section 4): build each GAN, train it resumably, chain the layers.

Stage 1 trains GAN 1 (IR-anchored) and GAN 2 (VIS-anchored) on the source store;
then the trained G1 and G2 run over the whole training images and their outputs
I_IRV, I_VIR are cut at the same patch positions into ``second_layer_store.h5``
(:func:`make_second_layer_store`); stage 2 trains GAN 3 on them.

Running the same command again resumes: finished GANs are skipped, an interrupted
one restarts from its last finished epoch (:class:`~tf_twogan.callbacks.AtomicBackupAndRestore`),
and the data stream restarts at the matching batch, so a resumed run sees the same
batches as an uninterrupted one.  A finished GAN keeps its training state
(``state/<gan>``): rerun with a larger ``epochs`` and it continues from there, equal
to a run of that length from the start; a first layer trained further makes the
second-layer store again and retrains GAN 3.  What the console shows is in
:mod:`tf_twogan.progress`; collapse detection in :mod:`tf_twogan.collapse`.  The run folder's layout and checks are in
:mod:`tf_twogan.run_folder`, the callbacks in :mod:`tf_twogan.callbacks`, network files
in :mod:`tf_twogan.networks_io`, the strategy in :mod:`tf_twogan.distribute`.

Training runs under a ``tf.distribute`` strategy: the pair is built in
``strategy.scope()``, Keras splits each global batch over the replicas, and in
multi-worker training only the chief writes the run folder (the other workers write
to a temporary folder that is removed afterwards).

``from tf_twogan.training import train, load_generators`` (and the other names in
``__all__``) keeps working: they are re-exported from the modules that own them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .callbacks import (AtomicBackupAndRestore, EpochTimer, FusedSampleLogger, HistoryLogger, SaveNetworks, TrimHistory, backup_epoch,
                        restore_final_state, sample_patches)
from .collapse import CollapseCheck
from .config import ConfigError, TwoGanConfig
from .data import PatchStream
from .distribute import STRATEGIES, is_chief, make_strategy, needs_synchronized_batch_norm
from .errors import CheckpointError
from .gan import FUSIONGAN, GAN1, GAN2, AdversarialPair, PairRoles
from .gan import second_layer_roles as roles_for_second_layer
from .images import require_free_space, to_uint8
from .locking import FolderLock
from .models import Discriminator, Generator, generate
from .networks_io import load_generators, load_network, save_model_atomic
from .progress import ChainProgress, Stage, wants_bars
from .run_folder import (NETWORK_NUMBERS, SECOND_LAYER_STORE, RunFolder, adopt_first_layer, check_store, gan3_epochs, open_run_folder,
                         remove_finished_backups, remove_stray_temporaries, worker_run_folder)
from .store import PatchStore, derive_store, verify_store

TRAIN_SPACE_MARGIN = 64 * 2**20  # networks, backups, histories and logs of a run, with room to spare

__all__ = [
    # the protocol (owned here)
    "build_pair", "configure_runtime", "make_second_layer_store", "second_layer_roles", "train", "train_pair",
    # re-exported for the README, notebooks and existing callers
    "AtomicBackupAndRestore", "CheckpointError", "RunFolder", "SECOND_LAYER_STORE", "STRATEGIES", "backup_epoch",
    "is_chief", "load_generators", "load_network", "make_strategy", "open_run_folder", "save_model_atomic",
]


def configure_runtime(seed: int | None, precision: str = "float32") -> None:
    """Seed every generator and make ops deterministic when a seed is given; set the dtype policy."""
    if seed is not None:
        if not 0 <= seed < 2 ** 32:
            raise ConfigError(f"train.seed must be in [0, 2**32), got {seed}")
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)


def second_layer_roles(config: TwoGanConfig) -> PairRoles:
    """GAN 3's roles under ``config`` (``train.swap_second_layer`` and the ``second_layer`` targets)."""
    second = config.second_layer
    return roles_for_second_layer(config.train.swap_second_layer, second.intensity_target, second.gradient_target)


def build_pair(config: TwoGanConfig, roles: PairRoles, patch_size: int | None = None,
               synchronized_batch_norm: bool = False) -> AdversarialPair:
    """A compiled :class:`AdversarialPair` for one GAN (its discriminator sized to the generator's output).

    ``synchronized_batch_norm``: BatchNorm over the global batch, for a strategy with
    several replicas (:func:`tf_twogan.distribute.needs_synchronized_batch_norm`); build the
    pair in that strategy's ``scope()``.
    """
    weight = config.loss.second_layer_content_weight if roles.layer == 2 else config.loss.first_layer_content_weight
    number = NETWORK_NUMBERS[roles.name]
    if config.train.seed is not None:
        # each GAN starts from the same random state whether or not this process built
        # the GANs before it (a resumed run skips them): resume equals a fresh run
        keras.utils.set_random_seed(config.train.seed + max(int(number or 1) - 1, 0))
    generator = Generator.from_settings(config.generator, synchronized_batch_norm=synchronized_batch_norm, name=f"g{number}")
    output_size = (patch_size or config.data.patch_size) - (2 * generator.margin if config.generator.pad_mode == "none" else 0)
    discriminator = Discriminator.from_settings(config.discriminator, input_size=output_size,
                                                synchronized_batch_norm=synchronized_batch_norm, name=f"d{number}")
    seed = None if config.train.seed is None else config.train.seed + int(number or 0)
    pair = AdversarialPair(generator, discriminator, roles, weight, config.loss, config.train.discriminator_steps, seed=seed)
    pair.build()
    adam = lambda: keras.optimizers.Adam(config.train.learning_rate, epsilon=config.train.adam_epsilon)  # noqa: E731
    pair.compile(adam(), adam())
    return pair


def train_pair(run: RunFolder, store_path: Path, config: TwoGanConfig, roles: PairRoles, verbose: int | str = "auto",
               callbacks: list[keras.callbacks.Callback] = (),
               strategy: tf.distribute.Strategy | None = None,
               initial_generator: Generator | None = None) -> AdversarialPair:
    """Train one GAN through ``fit()`` with the run folder's callbacks (plus ``callbacks``); resumable.

    ``initial_generator``: a trained generator of the same architecture whose weights
    the generator starts from (``second_layer.init="g1"``); a resumed run then
    restores its backup over them.

    Under ``strategy`` (default: the current one) the networks and optimizers are
    built in ``strategy.scope()`` and ``config.train.batch_size`` is the global batch,
    split over ``strategy.num_replicas_in_sync`` replicas.

    Callback order matters for crash safety: a collapsed epoch (:class:`CollapseCheck`)
    stops before its history row and backup are written; the history row of an epoch
    is written before its backup (a kill in between logs the epoch twice, and
    :class:`TrimHistory` drops the repeat on resume), and the networks are saved
    before :class:`AtomicBackupAndRestore` moves the backup to ``run.state(roles)`` at
    the end (the state a longer run continues from).
    """
    strategy = strategy or tf.distribute.get_strategy()
    with PatchStore(store_path, roles.kinds) as store:
        patch_size = store.patch_size
    with strategy.scope():
        pair = build_pair(config, roles, patch_size, needs_synchronized_batch_norm(strategy))
    if initial_generator is not None:
        pair.generator.set_weights(initial_generator.get_weights())
    stream = PatchStream(store_path, roles.kinds, config.train.batch_size, seed=config.train.seed or 0,
                         window=config.train.shuffle_window)
    steps = config.train.steps_per_epoch or stream.batches_per_epoch
    backup = AtomicBackupAndRestore(run.backup(roles), final_dir=run.state(roles))
    resume_epoch = backup.initial_epoch
    samples, epochs = sample_patches(store_path, roles.kinds), stage_epochs(config, roles)
    name = f"GAN {NETWORK_NUMBERS[roles.name]}" if NETWORK_NUMBERS[roles.name] else "FusionGAN"
    callbacks = [
        SaveNetworks(run.network(roles, "g"), run.network(roles, "d")),
        TrimHistory(run.history(roles), resume_epoch),
        EpochTimer(),
        CollapseCheck(samples, name, epochs),
        HistoryLogger(run.history(roles)),
        backup,
        keras.callbacks.TensorBoard(str(run.logs(roles)), write_graph=False, profile_batch=0),
        FusedSampleLogger(run.logs(roles), samples, roles),
        *callbacks,
    ]
    dataset = stream.dataset(start=resume_epoch * steps)
    if strategy.num_replicas_in_sync > 1:
        options = tf.data.Options()  # every worker reads the same stream; each keeps its share of each batch
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    with stream:  # closed here, in this thread, after fit (PatchStream.close says why)
        pair.fit(dataset, epochs=epochs, initial_epoch=resume_epoch, steps_per_epoch=steps, callbacks=callbacks,
                 verbose=verbose, shuffle=False)
    return pair


def stage_epochs(config: TwoGanConfig, roles: PairRoles) -> int:
    """The epochs a GAN trains under ``config``: ``train.epochs``, GAN 3 its own (:func:`~tf_twogan.run_folder.gan3_epochs`)."""
    return gan3_epochs(config) if roles.layer == 2 else config.train.epochs


def make_second_layer_store(run: RunFolder, store_path: Path, generator_1: Generator, generator_2: Generator,
                            progress: bool = True, with_sources: bool = False) -> Path:
    """Whole-image G1/G2 inference over the training images, cut at the source store's patch positions.

    ``with_sources`` also stores the IR and VIS patches (for GAN 3 targets taken from the sources).
    """
    def first_layer_outputs(name: str, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ir, vis = images["ir"], images["vis"]
        outputs = {"irv": to_uint8(generate(generator_1, ir, vis)), "vir": to_uint8(generate(generator_2, vis, ir))}
        return {**outputs, "ir": ir, "vis": vis} if with_sources else outputs

    return derive_store(store_path, run.second_layer_store, first_layer_outputs,
                        attributes={"generators": ["g1.keras", "g2.keras"]}, progress=progress)


def train(store_path: str | os.PathLike, run_dir: str | os.PathLike, config: TwoGanConfig,
          verbose: int | str = "auto", callbacks: list[keras.callbacks.Callback] = (),
          strategy: str | tf.distribute.Strategy | None = None,
          first_layer_from: str | os.PathLike | None = None) -> RunFolder:
    """``twogan train``: the whole protocol of ``config.method``, resuming whatever a previous run left.

    A ``config`` that only raises the epochs of a run folder's config extends that run.
    ``verbose``: 0 prints nothing; otherwise a header per GAN and a line per epoch
    (:mod:`tf_twogan.progress`), with Keras' progress bars for 1, or for ``"auto"``
    when stdout is a terminal.  A collapsed GAN raises :class:`~tf_twogan.collapse.CollapseError`.

    ``twogan``: GAN 1, GAN 2, the second-layer store, GAN 3.  ``fusiongan``: the
    single FusionGAN pair (``g.keras``, ``d.keras``, ``history_fusiongan.csv``).
    ``strategy``: ``"default"``, ``"mirrored"``, ``"multiworker"`` or a
    ``tf.distribute.Strategy`` (see :func:`make_strategy`); ``batch_size`` is global.
    ``first_layer_from``: a run folder or checkpoint whose G1 and G2 are reused
    (:func:`adopt_first_layer`), so only GAN 3 trains.
    Returns the run folder (for a non-chief worker: ``run_dir``, which it did not write).

    Example:
        >>> from tf_twogan.config import preset
        >>> train("tno_train.h5", "runs/lite", preset("lite").replace(train={"seed": 0}))
    """
    store_path = Path(store_path)
    PatchStream(store_path, ("ir", "vis"), config.train.batch_size, patch_size=config.data.patch_size)  # validates first
    verify_store(store_path, check_sources=False)  # layout and checksums: a damaged store fails now, not mid-training
    # libhdf5 (Keras' weight saves) crashes on a full disk: refuse up front (second-layer store <= this store, + networks)
    require_free_space(run_dir, store_path.stat().st_size + TRAIN_SPACE_MARGIN, "the second-layer store and the networks")
    strategy = make_strategy(strategy)  # before any TensorFlow op (MultiWorkerMirroredStrategy needs that)
    if config.train.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"train.batch_size {config.train.batch_size} is not a multiple of the "
                          f"{strategy.num_replicas_in_sync} replicas")
    configure_runtime(config.train.seed, config.train.precision)
    if is_chief(strategy):
        with FolderLock(run_dir, "twogan train"):  # one trainer per run folder
            run = open_run_folder(run_dir, config)
            check_store(run, store_path)
            remove_stray_temporaries(run)
            return _train_stages(run, store_path, config, verbose, callbacks, strategy, first_layer_from)
    run = worker_run_folder(run_dir, config, strategy.cluster_resolver.task_id)
    try:  # a non-chief worker adopts the first layer too, or it would train GAN 1 while the chief trains GAN 3
        _train_stages(run, store_path, config, verbose, callbacks, strategy, first_layer_from)
    finally:
        shutil.rmtree(run.root, ignore_errors=True)
    return RunFolder(Path(run_dir))


def _train_stages(run: RunFolder, store_path: Path, config: TwoGanConfig, verbose: int | str,
                  callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy,
                  first_layer_from: str | os.PathLike | None) -> RunFolder:
    bars = wants_bars(verbose)
    if config.method == "fusiongan":
        progress = ChainProgress([_stage(run, config, FUSIONGAN, 1, 1)], enabled=verbose != 0)
        _train_stage(run, store_path, config, progress, progress.stages[0], bars, callbacks, strategy)
        return remove_finished_backups(run)
    if first_layer_from is not None:
        adopt_first_layer(run, first_layer_from, config)
    chain = (GAN1, GAN2, second_layer_roles(config))
    progress = ChainProgress([_stage(run, config, roles, number, 3) for number, roles in enumerate(chain, 1)], enabled=verbose != 0)
    if any(stage.pending for stage in progress.stages[:2]) and _remove_second_layer(run, chain[2]):
        progress.say("The first layer trains further: the second-layer store is made again and GAN 3 trained again from scratch")
        progress = ChainProgress([*progress.stages[:2], _stage(run, config, chain[2], 3, 3)], enabled=verbose != 0)
    generators = {}
    for stage in progress.stages[:2]:
        pair = _train_stage(run, store_path, config, progress, stage, bars, callbacks, strategy)
        if pair is not None:
            generators[stage.roles.name] = pair.generator
    first_layer = {roles.name: generators[roles.name] if roles.name in generators else load_network(run.network(roles, "g"))
                   for roles in (GAN1, GAN2)}
    if not run.second_layer_store.is_file():
        progress.say("Second-layer store: G1 and G2 over the training images")
        make_second_layer_store(run, store_path, first_layer["gan1"], first_layer["gan2"], progress=bars,
                                with_sources=bool({"ir", "vis"} & set(chain[2].kinds)))
    initial = first_layer["gan1"] if config.second_layer.init == "g1" else None
    _train_stage(run, run.second_layer_store, config, progress, progress.stages[2], bars, callbacks, strategy, initial)
    return remove_finished_backups(run)


def _stage(run: RunFolder, config: TwoGanConfig, roles: PairRoles, number: int, count: int) -> Stage:
    """Where one GAN of the chain stands: epochs done (from its backup or kept state) and epochs to reach.

    A finished GAN without kept state (an adopted first layer) counts as done.
    """
    if roles.layer == 1 and roles.name != "fusiongan" and run.adopted_first_layer:
        return Stage(roles, number, count, done=0, epochs=0, pending=False, adopted=True)
    epochs, finished = stage_epochs(config, roles), run.finished(roles)
    if run.backup(roles).is_dir():
        done = backup_epoch(run.backup(roles))
    elif finished:
        done = backup_epoch(run.state(roles)) if run.state(roles).is_dir() else epochs
    else:
        done = 0
    return Stage(roles, number, count, done, epochs, pending=not finished or done < epochs, extends=finished and done < epochs)


def _train_stage(run: RunFolder, store_path: Path, config: TwoGanConfig, progress: ChainProgress, stage: Stage, bars: bool,
                 callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy,
                 initial_generator: Generator | None = None) -> AdversarialPair | None:
    """Announce one GAN and train it if it is pending (an extension continues from its kept state); None if skipped."""
    progress.begin(stage)
    if not stage.pending:
        return None
    if stage.extends and not run.backup(stage.roles).is_dir():
        restore_final_state(run.state(stage.roles), run.backup(stage.roles))
    return train_pair(run, store_path, config, stage.roles, 1 if bars else 0, [*callbacks, progress.callback(stage)], strategy,
                      initial_generator=initial_generator)


def _remove_second_layer(run: RunFolder, roles: PairRoles) -> bool:
    """Delete what GAN 3 learnt from the previous first layer (store, networks, history, logs, states); True if anything was there."""
    paths = [run.network(roles, "g"), run.network(roles, "d"), run.history(roles), run.logs(roles), run.backup(roles),
             run.state(roles), run.second_layer_store]
    found = [path for path in paths if path.exists()]
    for path in found:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return bool(found)
