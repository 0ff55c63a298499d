"""The two-stage training protocol (SPEC section 4), run folders, callbacks and resume.

Stage 1 trains GAN 1 (IR-anchored) and GAN 2 (VIS-anchored) on the source store;
then the trained G1 and G2 run over the whole training images and their outputs
I_IRV, I_VIR are cut at the same patch positions into ``second_layer_store.h5``;
stage 2 trains GAN 3 on them.  A run folder holds::

    config.json                 the resolved TwoGanConfig
    g1.keras d1.keras ...       each network, written when its GAN finishes
    history_gan1.csv ...        Keras CSVLogger, one row per epoch
    logs/gan1/ ...              TensorBoard scalars and a fused sample image per epoch
    backup/gan1/                BackupAndRestore state while a GAN trains
    second_layer_store.h5       the I_IRV / I_VIR patch store

Running the same command again resumes: finished GANs are skipped, an interrupted
one restarts from its last finished epoch, and the data stream restarts at the
matching batch, so a resumed run sees the same batches as an uninterrupted one.
Every file is written to a temporary name and renamed into place, so a process
killed at any instant (``kill -9``) leaves only complete files under the final
names (and stray ``.twogan-tmp.*`` files, removed by the next run).

Training runs under a ``tf.distribute`` strategy (:func:`make_strategy`): the pair
is built in ``strategy.scope()``, Keras splits each global batch over the replicas,
and in multi-worker training only the chief writes the run folder (the other
workers write to a temporary folder that is removed afterwards).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .config import ConfigError, TwoGanConfig
from .data import PatchStream
from .gan import FUSIONGAN, GAN1, GAN2, GAN3, AdversarialPair, PairRoles
from .gan import second_layer_roles as roles_for_second_layer
from .images import atomic_path, require_free_space, to_uint8
from .locking import FolderLock
from .locking import remove_stray_temporaries as remove_temporaries_of_dead
from .models import Discriminator, Generator, generate
from .store import PatchStore, derive_store, verify_store

SECOND_LAYER_STORE = "second_layer_store.h5"
NETWORK_NUMBERS = {"gan1": "1", "gan2": "2", "gan3": "3", "fusiongan": ""}
STRATEGIES = ("default", "mirrored", "multiworker")
TRAIN_SPACE_MARGIN = 64 * 2**20  # networks, backups, histories and logs of a run, with room to spare


class CheckpointError(ValueError):
    """A network file cannot be loaded (corrupt, not a ``.keras`` file, or it would run code); the message names it."""


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


def build_pair(config: TwoGanConfig, roles: PairRoles, patch_size: int | None = None) -> AdversarialPair:
    """A compiled :class:`AdversarialPair` for one GAN (its discriminator sized to the generator's output)."""
    weight = config.loss.second_layer_content_weight if roles.layer == 2 else config.loss.first_layer_content_weight
    number = NETWORK_NUMBERS[roles.name]
    if config.train.seed is not None:
        # each GAN starts from the same random state whether or not this process built
        # the GANs before it (a resumed run skips them): resume equals a fresh run
        keras.utils.set_random_seed(config.train.seed + max(int(number or 1) - 1, 0))
    generator = Generator.from_settings(config.generator, name=f"g{number}")
    output_size = (patch_size or config.data.patch_size) - (2 * generator.margin if config.generator.pad_mode == "none" else 0)
    discriminator = Discriminator.from_settings(config.discriminator, input_size=output_size, name=f"d{number}")
    seed = None if config.train.seed is None else config.train.seed + int(number or 0)
    pair = AdversarialPair(generator, discriminator, roles, weight, config.loss, config.train.discriminator_steps, seed=seed)
    pair.build()
    adam = lambda: keras.optimizers.Adam(config.train.learning_rate, epsilon=config.train.adam_epsilon)  # noqa: E731
    pair.compile(adam(), adam())
    return pair


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to a temporary ``.keras`` file, then rename into place."""
    temporary, target = atomic_path(path)
    try:
        model.save(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def load_network(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` network with ``safe_mode=True``: no code is executed.

    A file that is not a Keras zip archive (empty, truncated, another format), or
    whose config asks for code (a ``Lambda`` layer, an unregistered class), raises
    :class:`CheckpointError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such network file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a Keras .keras archive (empty, truncated or another format)")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, KeyError, zipfile/h5py errors
        reason = " ".join(str(error).split())
        if "safe_mode" in reason or "Lambda" in reason:
            reason = f"refused to load: it contains Python code that safe_mode does not run ({reason})"
        raise CheckpointError(f"{path}: {reason}") from None


def load_generators(run_dir: str | os.PathLike) -> tuple[Generator, Generator, Generator]:
    """G1, G2 and G3 of a finished run folder or checkpoint."""
    run_dir = Path(run_dir)
    generators = tuple(load_network(run_dir / f"g{number}.keras") for number in (1, 2, 3))
    for number, generator in zip((1, 2, 3), generators):
        if not isinstance(generator, Generator):
            raise CheckpointError(f"{run_dir / f'g{number}.keras'}: holds a {type(generator).__name__}, not a tf_twogan Generator")
    return generators


BACKUP_METADATA = "training_metadata.json"


def backup_epoch(backup_dir: Path) -> int:
    """Epochs already completed according to the backup state (0 if none)."""
    metadata = Path(backup_dir) / BACKUP_METADATA
    if not metadata.is_file():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore with a backup that a kill at any instant leaves consistent.

    Keras writes ``latest.weights.h5`` and ``training_metadata.json`` in place, one
    after the other, so a ``kill -9`` during the save leaves a half-written HDF5 file
    (which then fails to open) or weights of epoch e+1 with metadata of epoch e.
    Here each epoch's weights go to a temporary file renamed to
    ``epoch<N>.weights.h5``, then the metadata naming that file is replaced
    atomically, and only then is the previous weights file deleted: the metadata
    always names complete weights of the epoch it states.
    """

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._load_model()

    def _load_model(self) -> None:
        backup = Path(self.backup_dir)
        metadata_path = backup / BACKUP_METADATA
        if not metadata_path.is_file():
            return
        metadata = json.loads(metadata_path.read_text())
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(backup / metadata.get("weights", "latest.weights.h5")))
        self.model._initial_epoch = int(metadata["epoch"])

    def _save_model(self) -> None:
        backup = Path(self.backup_dir)
        backup.mkdir(parents=True, exist_ok=True)
        weights = backup / f"epoch{self._current_epoch}.weights.h5"
        temporary, _ = atomic_path(weights)  # ends in .weights.h5, as Keras wants
        try:
            self.model.save_weights(str(temporary), overwrite=True)
            os.replace(temporary, weights)
        finally:
            temporary.unlink(missing_ok=True)
        metadata, target = atomic_path(backup / BACKUP_METADATA)
        metadata.write_text(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": weights.name}))
        os.replace(metadata, target)
        for path in backup.iterdir():
            if path.name.endswith(".h5") and path != weights:
                path.unlink(missing_ok=True)


class TrimHistory(keras.callbacks.Callback):
    """Drop history rows of epochs that a resumed run will train again.

    Placed before CSVLogger, which writes each epoch's row before the backup of that
    epoch is saved: a crash between the two would otherwise log the epoch twice.
    """

    def __init__(self, history_path: Path, resume_epoch: int) -> None:
        super().__init__()
        self.history_path, self.resume_epoch = history_path, resume_epoch

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.history_path.is_file():
            return
        with self.history_path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        # a row cut short by a kill (other length than the header) is dropped too
        kept = rows[:1] + [row for row in rows[1:] if row and len(row) == len(rows[0]) and row[0].isdigit()
                           and int(row[0]) < self.resume_epoch]
        temporary, target = atomic_path(self.history_path)
        with temporary.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept if len(kept) > 1 else [])
        os.replace(temporary, target)


class SaveNetworks(keras.callbacks.Callback):
    """Writes the generator and discriminator (atomically) when ``fit`` ends.

    Placed before BackupAndRestore, whose ``on_train_end`` deletes the backup: a
    process killed between the two saves still finds the backup of the last epoch,
    and the rerun only writes the networks again instead of training the GAN anew.
    """

    def __init__(self, generator_path: Path | None, discriminator_path: Path | None) -> None:
        super().__init__()
        self.paths = (generator_path, discriminator_path)

    def on_train_end(self, logs: dict | None = None) -> None:
        for network, path in zip((self.model.generator, self.model.discriminator), self.paths):
            if path is not None:
                save_model_atomic(network, path)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch) to the logs, so CSVLogger records it."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.started


class FusedSampleLogger(keras.callbacks.Callback):
    """Writes a fixed sample of [primary | other | generated] patches to TensorBoard each epoch."""

    def __init__(self, log_dir: Path, samples: dict[str, np.ndarray], roles: PairRoles) -> None:
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "samples"))
        self.samples, self.roles = samples, roles

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        inputs, *_ = self.model._unpack(self.samples)
        generated = self.model.generator(inputs, training=False)
        size = tf.shape(generated)[1:3]
        from .gan import center_crop

        panels = [center_crop(inputs[..., i:i + 1], size) for i in range(2)] + [tf.cast(generated, tf.float32)]
        with self.writer.as_default():
            tf.summary.image("fused_sample", tf.concat(panels, axis=2) * 0.5 + 0.5, step=epoch, max_outputs=len(inputs))
        self.writer.flush()


def sample_patches(store_path: Path, kinds: tuple[str, ...], count: int = 4) -> dict[str, np.ndarray]:
    """``count`` patches spread evenly over a store: the fixed TensorBoard sample."""
    with PatchStore(store_path, kinds) as store:
        positions = np.linspace(0, len(store) - 1, count).astype(int)
        return {kind: np.concatenate([store.read(kind, p, p + 1) for p in positions]) for kind in kinds}


@dataclass
class RunFolder:
    """Paths of a run folder."""

    root: Path

    def network(self, roles: PairRoles, part: str) -> Path:
        return self.root / f"{part}{NETWORK_NUMBERS[roles.name]}.keras"

    def history(self, roles: PairRoles) -> Path:
        return self.root / f"history_{roles.name}.csv"

    def logs(self, roles: PairRoles) -> Path:
        return self.root / "logs" / roles.name

    def backup(self, roles: PairRoles) -> Path:
        return self.root / "backup" / roles.name

    def finished(self, roles: PairRoles) -> bool:
        """Both networks written, or the generator alone with no training under way.

        The second case is a first layer taken from another run (``first_layer_from``),
        which may come without its discriminators.
        """
        if not self.network(roles, "g").is_file():
            return False
        return self.network(roles, "d").is_file() or not self.backup(roles).is_dir()

    @property
    def started(self) -> bool:
        """True once anything was trained here: a network, a second-layer store or an epoch's backup."""
        return (any(self.root.glob("*.keras")) or self.second_layer_store.exists()
                or any(self.root.glob(f"backup/*/{BACKUP_METADATA}")))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def second_layer_store(self) -> Path:
        return self.root / SECOND_LAYER_STORE


def open_run_folder(run_dir: str | os.PathLike, config: TwoGanConfig) -> RunFolder:
    """Create a run folder with ``config.json``, or reopen one made with the same config."""
    run = RunFolder(Path(run_dir))
    if run.root.exists() and not run.root.is_dir():
        raise ConfigError(f"{run.root}: exists and is not a folder")
    run.root.mkdir(parents=True, exist_ok=True)
    if not _check_config(run, config):
        config.to_json(run.config)
    return run


def _check_config(run: RunFolder, config: TwoGanConfig) -> bool:
    """False if the folder has no ``config.json``; raise if it has another config."""
    if not run.config.is_file():
        return False
    existing = TwoGanConfig.from_json(run.config)
    if existing != config and not run.started:
        return False  # a run that failed before its first epoch binds nothing: the corrected config replaces it
    if existing != config:
        old, new = _flatten(existing.to_dict()), _flatten(config.to_dict())
        changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
        raise ConfigError(f"{run.root}: run folder was made with another config (differs in {', '.join(changed)}); "
                          "rerun with the same options to resume, or choose a new --out")
    return True


FIRST_LAYER_FILES = ("g1.keras", "g2.keras", "d1.keras", "d2.keras", "history_gan1.csv", "history_gan2.csv")


def second_layer_variant(config: TwoGanConfig, of: TwoGanConfig) -> TwoGanConfig:
    """``config`` with the settings that only GAN 3 uses, and the preset's name, taken from ``of``."""
    variant = config.replace(second_layer=of.second_layer, loss={"second_layer_content_weight": of.loss.second_layer_content_weight},
                             train={"swap_second_layer": of.train.swap_second_layer})
    return dataclasses.replace(variant, preset=of.preset)


def adopt_first_layer(run: RunFolder, source: str | os.PathLike, config: TwoGanConfig) -> list[str]:
    """Copy a finished first layer (G1, G2, their histories and discriminators if present) from ``source``.

    Only GAN 3 then trains: the way to compare second-layer designs on one first layer.
    ``source``'s ``config.json`` must equal ``config`` in everything but the settings
    that only GAN 3 uses and the preset's name (:func:`second_layer_variant`).  Files already in the run
    folder are kept.  Returns the names copied.
    """
    source = Path(source)
    if not (source / "config.json").is_file():
        raise ConfigError(f"{source}: not a run folder or checkpoint (no config.json)")
    theirs = TwoGanConfig.from_json(source / "config.json")
    if theirs.method != "twogan" or second_layer_variant(theirs, config) != config:
        old, new = _flatten(second_layer_variant(theirs, config).to_dict()), _flatten(config.to_dict())
        changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
        raise ConfigError(f"{source}: its first layer was trained with another config (differs in {', '.join(changed)})")
    missing = [name for name in ("g1.keras", "g2.keras") if not (source / name).is_file()]
    if missing:
        raise ConfigError(f"{source}: has no finished first layer (missing {', '.join(missing)})")
    copied = []
    for name in FIRST_LAYER_FILES:
        if (source / name).is_file() and not (run.root / name).exists():
            temporary, target = atomic_path(run.root / name)
            try:
                shutil.copyfile(source / name, temporary)
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
            copied.append(name)
    return copied


def remove_stray_temporaries(run: RunFolder) -> list[Path]:
    """Delete the temporaries a killed process left in the run folder (only the package's own, see :mod:`.locking`)."""
    return remove_temporaries_of_dead(run.root)


def make_strategy(strategy: str | tf.distribute.Strategy | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named ``default``, ``mirrored`` or ``multiworker`` (or the one given).

    ``mirrored``: one replica per local GPU (or the CPU), gradients all-reduced.
    ``multiworker``: MultiWorkerMirroredStrategy over the hosts in ``TF_CONFIG``; it
    must be created before TensorFlow runs any op, as :func:`train` does.
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


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster (``TF_CONFIG``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type or task_type == "chief":
        return True
    return task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_run_folder(run_dir: str | os.PathLike, config: TwoGanConfig, task_id: int) -> RunFolder:
    """A non-chief worker's run folder: a temporary folder that mirrors the chief's at the start.

    Finished networks and the second-layer store are linked, the ``backup/`` state
    is copied (so the worker resumes from the same epoch as the chief); everything
    the worker writes stays in the temporary folder, which :func:`train` removes.
    """
    chief = RunFolder(Path(run_dir))
    if chief.root.is_dir():
        _check_config(chief, config)
    run = RunFolder(Path(tempfile.mkdtemp(prefix=f"twogan_worker{task_id}_")))
    config.to_json(run.config)
    if chief.root.is_dir():
        for path in chief.root.iterdir():
            if not path.name.startswith(".") and (path.suffix == ".keras" or path.name == SECOND_LAYER_STORE):
                (run.root / path.name).symlink_to(path.resolve())
        if (chief.root / "backup").is_dir():
            shutil.copytree(chief.root / "backup", run.root / "backup")
    return run


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


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

    Callback order matters for crash safety: the history row of an epoch is written
    before its backup (a kill in between logs the epoch twice, and
    :class:`TrimHistory` drops the repeat on resume), and the networks are saved
    before BackupAndRestore deletes the backup at the end.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with PatchStore(store_path, roles.kinds) as store:
        patch_size = store.patch_size
    with strategy.scope():
        pair = build_pair(config, roles, patch_size)
    if initial_generator is not None:
        pair.generator.set_weights(initial_generator.get_weights())
    stream = PatchStream(store_path, roles.kinds, config.train.batch_size, seed=config.train.seed or 0,
                         window=config.train.shuffle_window)
    steps = config.train.steps_per_epoch or stream.batches_per_epoch
    backup_dir = run.backup(roles)
    resume_epoch = backup_epoch(backup_dir)
    callbacks = [
        SaveNetworks(run.network(roles, "g"), run.network(roles, "d")),
        TrimHistory(run.history(roles), resume_epoch),
        EpochTimer(),
        keras.callbacks.CSVLogger(str(run.history(roles)), append=True),
        AtomicBackupAndRestore(str(backup_dir)),
        keras.callbacks.TensorBoard(str(run.logs(roles)), write_graph=False, profile_batch=0),
        FusedSampleLogger(run.logs(roles), sample_patches(store_path, roles.kinds), roles),
        *callbacks,
    ]
    dataset = stream.dataset(start=resume_epoch * steps)
    if strategy.num_replicas_in_sync > 1:
        options = tf.data.Options()  # every worker reads the same stream; each keeps its share of each batch
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    epochs = config.second_layer.epochs or config.train.epochs if roles.layer == 2 else config.train.epochs
    pair.fit(dataset, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose, shuffle=False)
    return pair


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
        with FolderLock(run_dir, "twogan train"):  # one trainer per run folder (issue 13)
            run = open_run_folder(run_dir, config)
            remove_stray_temporaries(run)
            if first_layer_from is not None and config.method == "twogan":
                adopt_first_layer(run, first_layer_from, config)
            return _train_stages(run, store_path, config, verbose, callbacks, strategy)
    run = worker_run_folder(run_dir, config, strategy.cluster_resolver.task_id)
    try:
        _train_stages(run, store_path, config, verbose, callbacks, strategy)
    finally:
        shutil.rmtree(run.root, ignore_errors=True)
    return RunFolder(Path(run_dir))


def _train_stages(run: RunFolder, store_path: Path, config: TwoGanConfig, verbose: int | str,
                  callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy) -> RunFolder:
    if config.method == "fusiongan":
        if not run.finished(FUSIONGAN):
            train_pair(run, store_path, config, FUSIONGAN, verbose, callbacks, strategy)
        return _tidy(run)
    generators = {}
    for roles in (GAN1, GAN2):
        if not run.finished(roles):
            generators[roles.name] = train_pair(run, store_path, config, roles, verbose, callbacks, strategy).generator
    first_layer = {roles.name: generators[roles.name] if roles.name in generators else load_network(run.network(roles, "g"))
                   for roles in (GAN1, GAN2)}
    roles = second_layer_roles(config)
    if not run.second_layer_store.is_file():
        make_second_layer_store(run, store_path, first_layer["gan1"], first_layer["gan2"], progress=verbose != 0,
                                with_sources=bool({"ir", "vis"} & set(roles.kinds)))
    if not run.finished(roles):
        initial = first_layer["gan1"] if config.second_layer.init == "g1" else None
        train_pair(run, run.second_layer_store, config, roles, verbose, callbacks, strategy, initial_generator=initial)
    return _tidy(run)


def _tidy(run: RunFolder) -> RunFolder:
    """Remove the backups of finished GANs (left by a kill after the networks were saved) and the emptied ``backup/``."""
    backup = run.root / "backup"
    for roles in (GAN1, GAN2, GAN3, FUSIONGAN):
        if run.finished(roles) and run.backup(roles).is_dir():
            shutil.rmtree(run.backup(roles))
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()
    return run
