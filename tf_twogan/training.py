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
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .config import ConfigError, TwoGanConfig
from .data import PatchStream
from .gan import FUSIONGAN, GAN1, GAN2, GAN3, GAN3_SWAPPED, AdversarialPair, PairRoles
from .images import atomic_path
from .models import Discriminator, Generator, generate, to_uint8
from .store import PatchStore, derive_store

SECOND_LAYER_STORE = "second_layer_store.h5"
NETWORK_NUMBERS = {"gan1": "1", "gan2": "2", "gan3": "3", "fusiongan": ""}


def configure_runtime(seed: int | None, precision: str = "float32") -> None:
    """Seed every generator and make ops deterministic when a seed is given; set the dtype policy."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)


def second_layer_roles(config: TwoGanConfig) -> PairRoles:
    return GAN3_SWAPPED if config.train.swap_second_layer else GAN3


def build_pair(config: TwoGanConfig, roles: PairRoles, patch_size: int | None = None) -> AdversarialPair:
    """A compiled :class:`AdversarialPair` for one GAN (its discriminator sized to the generator's output)."""
    weight = config.loss.second_layer_content_weight if roles.name == "gan3" else config.loss.first_layer_content_weight
    number = NETWORK_NUMBERS[roles.name]
    generator = Generator.from_settings(config.generator, name=f"g{number}")
    output_size = (patch_size or config.data.patch_size) - (2 * generator.margin if config.generator.pad_mode == "none" else 0)
    discriminator = Discriminator.from_settings(config.discriminator, input_size=output_size, name=f"d{number}")
    seed = None if config.train.seed is None else config.train.seed + int(number or 0)
    pair = AdversarialPair(generator, discriminator, roles, weight, config.loss, config.train.discriminator_steps, seed=seed)
    pair.build()
    pair.compile(keras.optimizers.Adam(config.train.learning_rate), keras.optimizers.Adam(config.train.learning_rate))
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
    """Load a ``.keras`` network with ``safe_mode=True`` (no code is executed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such network file")
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def load_generators(run_dir: str | os.PathLike) -> tuple[Generator, Generator, Generator]:
    """G1, G2 and G3 of a finished run folder or checkpoint."""
    run_dir = Path(run_dir)
    return tuple(load_network(run_dir / f"g{number}.keras") for number in (1, 2, 3))


def backup_epoch(backup_dir: Path) -> int:
    """Epochs already completed according to Keras' BackupAndRestore state (0 if none)."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.is_file():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


class TrimHistory(keras.callbacks.Callback):
    """Drop history rows of epochs that a resumed run will train again.

    Placed between BackupAndRestore and CSVLogger: a crash after CSVLogger wrote
    an epoch's row but before the backup of that epoch would otherwise log the
    epoch twice.
    """

    def __init__(self, history_path: Path, resume_epoch: int) -> None:
        super().__init__()
        self.history_path, self.resume_epoch = history_path, resume_epoch

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.history_path.is_file():
            return
        with self.history_path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < self.resume_epoch]
        temporary, target = atomic_path(self.history_path)
        with temporary.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept if len(kept) > 1 else [])
        os.replace(temporary, target)


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
        return self.network(roles, "g").is_file() and self.network(roles, "d").is_file()

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def second_layer_store(self) -> Path:
        return self.root / SECOND_LAYER_STORE


def open_run_folder(run_dir: str | os.PathLike, config: TwoGanConfig) -> RunFolder:
    """Create a run folder with ``config.json``, or reopen one made with the same config."""
    run = RunFolder(Path(run_dir))
    run.root.mkdir(parents=True, exist_ok=True)
    if run.config.is_file():
        existing = TwoGanConfig.from_json(run.config)
        if existing != config:
            old, new = _flatten(existing.to_dict()), _flatten(config.to_dict())
            changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
            raise ConfigError(f"{run.root}: run folder was made with another config (differs in {', '.join(changed)}); "
                              "rerun with the same options to resume, or choose a new --out")
    else:
        config.to_json(run.config)
    return run


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def train_pair(run: RunFolder, store_path: Path, config: TwoGanConfig, roles: PairRoles, verbose: int | str = "auto",
               callbacks: list[keras.callbacks.Callback] = ()) -> AdversarialPair:
    """Train one GAN through ``fit()`` with the run folder's callbacks (plus ``callbacks``); resumable."""
    with PatchStore(store_path, roles.kinds) as store:
        patch_size = store.patch_size
    pair = build_pair(config, roles, patch_size)
    stream = PatchStream(store_path, roles.kinds, config.train.batch_size, seed=config.train.seed or 0,
                         window=config.train.shuffle_window)
    steps = config.train.steps_per_epoch or stream.batches_per_epoch
    backup_dir = run.backup(roles)
    resume_epoch = backup_epoch(backup_dir)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True),
        TrimHistory(run.history(roles), resume_epoch),
        EpochTimer(),
        keras.callbacks.CSVLogger(str(run.history(roles)), append=True),
        keras.callbacks.TensorBoard(str(run.logs(roles)), write_graph=False, profile_batch=0),
        FusedSampleLogger(run.logs(roles), sample_patches(store_path, roles.kinds), roles),
        *callbacks,
    ]
    pair.fit(stream.dataset(start=resume_epoch * steps), epochs=config.train.epochs, steps_per_epoch=steps,
             callbacks=callbacks, verbose=verbose, shuffle=False)
    save_model_atomic(pair.generator, run.network(roles, "g"))
    save_model_atomic(pair.discriminator, run.network(roles, "d"))
    return pair


def make_second_layer_store(run: RunFolder, store_path: Path, generator_1: Generator, generator_2: Generator,
                            progress: bool = True) -> Path:
    """Whole-image G1/G2 inference over the training images, cut at the source store's patch positions."""
    def first_layer_outputs(name: str, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ir, vis = images["ir"], images["vis"]
        return {"irv": to_uint8(generate(generator_1, ir, vis)), "vir": to_uint8(generate(generator_2, vis, ir))}

    return derive_store(store_path, run.second_layer_store, first_layer_outputs,
                        attributes={"generators": ["g1.keras", "g2.keras"]}, progress=progress)


def train(store_path: str | os.PathLike, run_dir: str | os.PathLike, config: TwoGanConfig,
          verbose: int | str = "auto", callbacks: list[keras.callbacks.Callback] = ()) -> RunFolder:
    """``twogan train``: the whole protocol of ``config.method``, resuming whatever a previous run left.

    ``twogan``: GAN 1, GAN 2, the second-layer store, GAN 3.  ``fusiongan``: the
    single FusionGAN pair (``g.keras``, ``d.keras``, ``history_fusiongan.csv``).

    Example:
        >>> from tf_twogan.config import preset
        >>> train("tno_train.h5", "runs/lite", preset("lite").replace(train={"seed": 0}))
    """
    store_path = Path(store_path)
    with PatchStore(store_path, ("ir", "vis"), config.data.patch_size):
        pass
    configure_runtime(config.train.seed, config.train.precision)
    run = open_run_folder(run_dir, config)
    if config.method == "fusiongan":
        if not run.finished(FUSIONGAN):
            train_pair(run, store_path, config, FUSIONGAN, verbose, callbacks)
        return _tidy(run)
    for roles in (GAN1, GAN2):
        if not run.finished(roles):
            train_pair(run, store_path, config, roles, verbose, callbacks)
    if not run.second_layer_store.is_file():
        generator_1, generator_2 = (load_network(run.network(roles, "g")) for roles in (GAN1, GAN2))
        make_second_layer_store(run, store_path, generator_1, generator_2, progress=verbose != 0)
    roles = second_layer_roles(config)
    if not run.finished(roles):
        train_pair(run, run.second_layer_store, config, roles, verbose, callbacks)
    return _tidy(run)


def _tidy(run: RunFolder) -> RunFolder:
    """Remove the emptied ``backup/`` folder of a finished run."""
    backup = run.root / "backup"
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()
    return run
