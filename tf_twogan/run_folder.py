"""Run folders: their layout, their ``config.json`` check, and what a restarted or extra process finds in them.

A run folder holds::

    config.json                 the resolved TwoGanConfig
    store.json                  the identity of the store the run trains from (path and content digest)
    first_layer_config.json     the config of an adopted first layer (``--first-layer-from``)
    g1.keras d1.keras ...       each network, written when its GAN finishes
    history_gan1.csv ...        one row per epoch (:class:`~tf_twogan.callbacks.HistoryLogger`)
    logs/gan1/ ...              TensorBoard scalars and a fused sample image per epoch
    backup/gan1/                the training state while a GAN trains (:class:`~tf_twogan.callbacks.AtomicBackupAndRestore`)
    state/gan1/                 the training state after a GAN's last epoch: a larger ``--epochs`` continues from it
    second_layer_store.h5       the I_IRV / I_VIR patch store

Every file is written to a temporary name and renamed into place, so a process
killed at any instant (``kill -9``) leaves only complete files under the final names
(and stray ``.*.tmp.*`` files, which :func:`remove_stray_temporaries` deletes).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .config import ConfigError, TwoGanConfig
from .gan import FUSIONGAN, GAN1, GAN2, GAN3, PairRoles

SECOND_LAYER_STORE = "second_layer_store.h5"
NETWORK_NUMBERS = {"gan1": "1", "gan2": "2", "gan3": "3", "fusiongan": ""}
FIRST_LAYER_CONFIG = "first_layer_config.json"
STORE_RECORD = "store.json"
FIRST_LAYER_FILES = ("g1.keras", "g2.keras", "d1.keras", "d2.keras", "history_gan1.csv", "history_gan2.csv")


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

    def state(self, roles: PairRoles) -> Path:
        """The training state (networks, optimizers, seeds) after the GAN's last epoch, kept to extend the run."""
        return self.root / "state" / roles.name

    @property
    def adopted_first_layer(self) -> bool:
        """True when G1 and G2 came from another run (``--first-layer-from``): only GAN 3 trains here."""
        return (self.root / FIRST_LAYER_CONFIG).is_file()

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
        from .callbacks import BACKUP_METADATA

        return (any(self.root.glob("*.keras")) or self.second_layer_store.exists()
                or any(self.root.glob(f"backup/*/{BACKUP_METADATA}")) or any(self.root.glob(f"state/*/{BACKUP_METADATA}")))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def second_layer_store(self) -> Path:
        return self.root / SECOND_LAYER_STORE


EPOCH_SETTINGS = {"train.epochs", "second_layer.epochs"}  # the settings a rerun may raise to extend a run


def open_run_folder(run_dir: str | os.PathLike, config: TwoGanConfig) -> RunFolder:
    """Create a run folder with ``config.json``, or reopen one made with the same config (or extended: :func:`check_config`)."""
    run = RunFolder(Path(run_dir))
    if run.root.exists() and not run.root.is_dir():
        raise ConfigError(f"{run.root}: exists and is not a folder")
    run.root.mkdir(parents=True, exist_ok=True)
    if not check_config(run, config):
        config.to_json(run.config)
    return run


def check_config(run: RunFolder, config: TwoGanConfig) -> bool:
    """True if ``config.json`` holds ``config``; False if there is none or ``config`` may replace it; else raise :class:`ConfigError`.

    ``config`` replaces the folder's config when nothing was trained yet, or when it
    only raises the epochs (:data:`EPOCH_SETTINGS`) of a run whose GANs kept their
    training state: the rerun then extends the run.
    """
    if not run.config.is_file():
        return False
    existing = TwoGanConfig.from_json(run.config)
    if existing != config and not run.started:
        return False  # a run that failed before its first epoch binds nothing: the corrected config replaces it
    if existing == config:
        return True
    differences = config_differences(existing, config)
    if not set(differences.split(", ")) <= EPOCH_SETTINGS:
        raise ConfigError(f"{run.root}: run folder was made with another config (differs in {differences}); "
                          "rerun with the same options to resume (a larger --epochs extends it), or choose a new --out")
    for what, old, new in (("--epochs", existing.train.epochs, config.train.epochs),
                           ("GAN 3's epochs", gan3_epochs(existing), gan3_epochs(config))):
        if new < old:
            raise ConfigError(f"{run.root}: run folder trains {old} epochs ({what}); a rerun can extend a run, "
                              f"not shorten it (asked for {new}): choose a new --out")
    _require_training_state(run)
    return False


def gan3_epochs(config: TwoGanConfig) -> int:
    """The epochs GAN 3 trains: ``second_layer.epochs``, else ``train.epochs``."""
    return config.second_layer.epochs or config.train.epochs


def _require_training_state(run: RunFolder) -> None:
    """Raise :class:`ConfigError` when a GAN finished here without keeping its training state (so it cannot be extended)."""
    trained_here = (FUSIONGAN, GAN3) if run.adopted_first_layer else (FUSIONGAN, GAN1, GAN2, GAN3)
    for roles in trained_here:
        if run.finished(roles) and not run.state(roles).is_dir() and not run.backup(roles).is_dir():
            raise ConfigError(f"{run.root}: {run.network(roles, 'g').name} was trained without keeping its training state "
                              "(a run from before 2026-12-06), so it cannot be extended; choose a new --out")


def check_store(run: RunFolder, store_path: str | os.PathLike) -> None:
    """Record which store the run trains from, or refuse another store once the run has started.

    A first layer adopted from another run (:func:`adopt_first_layer`) may come from
    another store: the record is the store given to this run, from which the
    second-layer store is made and GAN 3 trains.  Stores are compared by content
    (:func:`~tf_twogan.store.store_identity`), so a moved or copied store is the same store.
    """
    from .store import StoreError, store_identity

    record, identity = run.root / STORE_RECORD, store_identity(store_path)
    if record.is_file() and run.started:
        known = json.loads(record.read_text())
        if known["identity"] != identity:
            raise StoreError(f"{store_path}: is another store than the one run folder {run.root} was trained on "
                             f"({known['path']}); rerun with that store to resume, or choose a new --out")
        return
    with atomic_write(record) as temporary:
        temporary.write_text(json.dumps({"path": str(Path(store_path).resolve()), "identity": identity}, indent=2) + "\n")


def config_differences(old: TwoGanConfig, new: TwoGanConfig) -> str:
    """The dotted names of the settings that differ, sorted and comma-separated (``train.epochs, train.seed``)."""
    old_flat, new_flat = _flatten(old.to_dict()), _flatten(new.to_dict())
    return ", ".join(sorted(key for key in old_flat.keys() | new_flat.keys() if old_flat.get(key) != new_flat.get(key)))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def second_layer_variant(config: TwoGanConfig, of: TwoGanConfig) -> TwoGanConfig:
    """``config`` with the settings that only GAN 3 uses once a first layer is adopted, and the preset's name, from ``of``.

    Those are ``second_layer``, the second-layer content weight and all of ``train``
    (schedule, precision, optimiser, seed): an adopted G1 and G2 are not trained again.
    """
    variant = config.replace(second_layer=of.second_layer, loss={"second_layer_content_weight": of.loss.second_layer_content_weight})
    return dataclasses.replace(variant, preset=of.preset, train=of.train)


def adopt_first_layer(run: RunFolder, source: str | os.PathLike, config: TwoGanConfig) -> list[str]:
    """Copy a finished first layer (G1, G2, their histories and discriminators if present) from ``source``.

    Only GAN 3 then trains: the way to compare second-layer designs on one first layer.
    ``source``'s ``config.json`` must equal ``config`` in everything but the settings
    that only GAN 3 uses and the preset's name (:func:`second_layer_variant`); the
    config the first layer was trained with is kept as ``first_layer_config.json``
    (the source's own record of it, if the source adopted its first layer too).
    Files already in the run folder are kept.  Returns the names copied.
    """
    source = Path(source)
    if not (source / "config.json").is_file():
        raise ConfigError(f"{source}: not a run folder or checkpoint (no config.json)")
    theirs = TwoGanConfig.from_json(source / "config.json")
    if theirs.method != "twogan" or second_layer_variant(theirs, config) != config:
        raise ConfigError(f"{source}: its first layer was trained with another config "
                          f"(differs in {config_differences(second_layer_variant(theirs, config), config)})")
    missing = [name for name in ("g1.keras", "g2.keras") if not (source / name).is_file()]
    if missing:
        raise ConfigError(f"{source}: has no finished first layer (missing {', '.join(missing)})")
    origin = source / FIRST_LAYER_CONFIG if (source / FIRST_LAYER_CONFIG).is_file() else source / "config.json"
    copied = []
    for name, path in [(name, source / name) for name in FIRST_LAYER_FILES] + [(FIRST_LAYER_CONFIG, origin)]:
        if path.is_file() and not (run.root / name).exists():
            with atomic_write(run.root / name) as temporary:
                shutil.copyfile(path, temporary)
            copied.append(name)
    return copied


def remove_stray_temporaries(run: RunFolder) -> list[Path]:
    """Delete the temporaries a killed process left in the run folder (only the package's own, see :mod:`.locking`)."""
    from .locking import remove_stray_temporaries as remove_temporaries_of_dead

    return remove_temporaries_of_dead(run.root)


def worker_run_folder(run_dir: str | os.PathLike, config: TwoGanConfig, task_id: int) -> RunFolder:
    """A non-chief worker's run folder: a temporary folder that mirrors the chief's at the start.

    Finished networks and the second-layer store are linked, the ``backup/`` state
    is copied (so the worker resumes from the same epoch as the chief); everything
    the worker writes stays in the temporary folder, which :func:`tf_twogan.training.train` removes.
    """
    chief = RunFolder(Path(run_dir))
    if chief.root.is_dir():
        check_config(chief, config)
    run = RunFolder(Path(tempfile.mkdtemp(prefix=f"twogan_worker{task_id}_")))
    config.to_json(run.config)
    if chief.root.is_dir():
        for path in chief.root.iterdir():
            if not path.name.startswith(".") and (path.suffix == ".keras" or path.name == SECOND_LAYER_STORE):
                (run.root / path.name).symlink_to(path.resolve())
        for states in ("backup", "state"):
            if (chief.root / states).is_dir():
                shutil.copytree(chief.root / states, run.root / states)
    return run


def remove_finished_backups(run: RunFolder) -> RunFolder:
    """Keep the backups of finished GANs (left by a kill after the networks were saved) as their state; remove the emptied ``backup/``."""
    from .callbacks import keep_final_state

    backup = run.root / "backup"
    for roles in (GAN1, GAN2, GAN3, FUSIONGAN):
        if run.finished(roles) and run.backup(roles).is_dir():
            keep_final_state(run.backup(roles), run.state(roles))
    if backup.is_dir() and not any(backup.iterdir()):
        backup.rmdir()
    return run
