"""The Keras callbacks a training run uses: crash-safe backup, the history CSV and its trimming, network saving, timing, samples.

All are public-API ``keras.callbacks.Callback`` subclasses; :func:`tf_twogan.training.train_pair`
puts them in the order that makes a kill at any instant recoverable (see its docstring).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .atomic import atomic_write
from .gan import PairRoles, center_crop
from .networks_io import save_model_atomic
from .store import PatchStore

BACKUP_METADATA = "training_metadata.json"


def read_backup_metadata(backup_dir: str | Path) -> dict | None:
    """The backup's metadata (``epoch``: epochs completed, ``weights``: the file holding them), or None if none."""
    metadata = Path(backup_dir) / BACKUP_METADATA
    if not metadata.is_file():
        return None
    return json.loads(metadata.read_text())


def backup_epoch(backup_dir: str | Path) -> int:
    """Epochs already completed according to the backup state (0 if none)."""
    metadata = read_backup_metadata(backup_dir)
    return 0 if metadata is None else int(metadata["epoch"])


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Saves the whole training state after each epoch and restores it when training restarts.

    The state is ``model.save_weights``: both networks' weights, both optimizers'
    variables (Adam moments and iteration counts), the soft-label seed generator and
    the metric trackers.  Each epoch's state goes to a temporary file renamed to
    ``epoch<N>.weights.h5``, then ``training_metadata.json`` naming that file is
    replaced atomically, and only then is the previous weights file deleted: a kill at
    any instant leaves metadata that names complete weights of the epoch it states.
    (Keras' own ``BackupAndRestore`` writes both files in place, one after the other.)

    The callback owns its state through public hooks only: it counts epochs itself
    in ``on_epoch_end``, restores the weights in ``on_train_begin``, and the caller
    passes :attr:`initial_epoch` (read from the same metadata) to ``fit``, so the
    resumed run numbers its epochs from there.  When ``fit`` ends normally the backup
    folder is removed, or moved to ``final_dir`` (:func:`keep_final_state`), from which
    a longer run continues.

    Args:
        backup_dir: the folder holding the state (created on the first save).
        delete_on_train_end: remove ``backup_dir`` when training ends (default True).
        final_dir: where the state after the last epoch is kept instead (default: nowhere).

    Example:
        >>> backup = AtomicBackupAndRestore("runs/lite/backup/gan1")
        >>> pair.fit(dataset, epochs=40, initial_epoch=backup.initial_epoch, callbacks=[backup])
    """

    def __init__(self, backup_dir: str | Path, delete_on_train_end: bool = True, final_dir: str | Path | None = None) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.delete_on_train_end = delete_on_train_end
        self.final_dir = None if final_dir is None else Path(final_dir)

    @property
    def initial_epoch(self) -> int:
        """The epochs the backup holds: the ``initial_epoch`` to pass to ``fit``."""
        return backup_epoch(self.backup_dir)

    def on_train_begin(self, logs: dict | None = None) -> None:
        metadata = read_backup_metadata(self.backup_dir)
        if metadata is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables must exist to be restored
        self.model.load_weights(str(self.backup_dir / metadata.get("weights", "latest.weights.h5")))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.save(epochs_done=epoch + 1)

    def save(self, epochs_done: int) -> Path:
        """Write the state after ``epochs_done`` epochs; returns the weights file."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        weights = self.backup_dir / f"epoch{epochs_done}.weights.h5"
        with atomic_write(weights, suffix=".weights.h5") as temporary:  # Keras wants the .weights.h5 ending
            self.model.save_weights(str(temporary), overwrite=True)
        with atomic_write(self.backup_dir / BACKUP_METADATA) as temporary:
            temporary.write_text(json.dumps({"epoch": epochs_done, "batch": 0, "weights": weights.name}))
        for path in self.backup_dir.iterdir():
            if path.name.endswith(".h5") and path != weights:
                path.unlink(missing_ok=True)
        return weights

    def on_train_end(self, logs: dict | None = None) -> None:
        if not (self.delete_on_train_end and self.backup_dir.is_dir()):
            return
        if self.final_dir is None:
            shutil.rmtree(self.backup_dir)
        else:
            keep_final_state(self.backup_dir, self.final_dir)


def keep_final_state(backup_dir: Path, final_dir: Path) -> None:
    """Move a finished GAN's backup to ``final_dir``, replacing an older state there.

    A kill between the removal and the rename leaves the backup, which
    :func:`tf_twogan.run_folder.remove_finished_backups` moves on the rerun.
    """
    if final_dir.is_dir():
        shutil.rmtree(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(backup_dir, final_dir)


def restore_final_state(final_dir: Path, backup_dir: Path) -> None:
    """Copy a kept final state back to ``backup_dir`` (atomically: a copy under a temporary name, renamed), so ``fit`` continues from it."""
    backup_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = backup_dir.with_name(f".{backup_dir.name}.restoring")
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(final_dir, temporary)
    os.replace(temporary, backup_dir)


def history_header(path: Path) -> list[str] | None:
    """The column names of the history CSV at ``path``, or None when it does not exist or is empty."""
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        return next(csv.reader(handle), None)


class HistoryLogger(keras.callbacks.Callback):
    """Appends one CSV row per epoch: ``epoch``, then the logs' values in the order of their sorted names.

    What Keras' ``CSVLogger`` writes, without its empty ``val_<name>`` columns: it
    adds one for every name when the first epoch has no validation values (so that
    a later validation can fill them), and these runs never validate.  A history
    that already exists (a resumed run, also one written by ``CSVLogger``) keeps its
    header: each row fills those columns, ``NA`` where the logs have no value.
    The file is closed after each row, so a kill loses at most the epoch under way.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        header = history_header(self.path)
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if header is None:
                header = ["epoch", *sorted(logs)]
                writer.writerow(header)
            writer.writerow([epoch, *(logs.get(name, "NA") for name in header[1:])])


class TrimHistory(keras.callbacks.Callback):
    """Drop history rows of epochs that a resumed run will train again.

    Placed before :class:`HistoryLogger`, which writes each epoch's row before the backup
    of that epoch is saved: a crash between the two would otherwise log the epoch twice.
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
        with atomic_write(self.history_path) as temporary, temporary.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept if len(kept) > 1 else [])


class SaveNetworks(keras.callbacks.Callback):
    """Writes the generator and discriminator (atomically) when ``fit`` ends.

    Placed before :class:`AtomicBackupAndRestore`, whose ``on_train_end`` deletes the
    backup: a process killed between the two saves still finds the backup of the last
    epoch, and the rerun only writes the networks again instead of training the GAN anew.
    """

    def __init__(self, generator_path: Path | None, discriminator_path: Path | None) -> None:
        super().__init__()
        self.paths = (generator_path, discriminator_path)

    def on_train_end(self, logs: dict | None = None) -> None:
        for network, path in zip((self.model.generator, self.model.discriminator), self.paths):
            if path is not None:
                save_model_atomic(network, path)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch) to the logs, so :class:`HistoryLogger` records it."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.started


class FusedSampleLogger(keras.callbacks.Callback):
    """Writes a fixed sample of [primary | other | generated] patches to TensorBoard each epoch."""

    def __init__(self, log_dir: Path, samples: np.ndarray, roles: PairRoles) -> None:
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "samples"))
        self.samples, self.roles = samples, roles

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        inputs, *_ = self.model.unpack_batch(self.samples)
        generated = self.model.generator(inputs, training=False)
        size = keras.ops.shape(generated)[1:3]
        panels = [center_crop(inputs[..., i:i + 1], size) for i in range(2)] + [tf.cast(generated, tf.float32)]
        with self.writer.as_default():
            tf.summary.image("fused_sample", tf.concat(panels, axis=2) * 0.5 + 0.5, step=epoch, max_outputs=len(inputs))
        self.writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.close()  # its event file's handle and thread, once per GAN


def sample_patches(store_path: Path, kinds: tuple[str, ...], count: int = 4) -> np.ndarray:
    """``count`` patches spread evenly over a store, ``kinds`` stacked as in a batch: the fixed TensorBoard sample."""
    with PatchStore(store_path, kinds) as store:
        positions = np.linspace(0, len(store) - 1, count).astype(int)
        return np.concatenate([np.concatenate([store.read(kind, p, p + 1) for p in positions]) for kind in kinds], axis=-1)
