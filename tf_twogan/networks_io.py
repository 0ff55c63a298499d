"""Reading and writing trained networks (``.keras`` files) of a run folder or checkpoint.

This is all that inference, export and the FusionGAN front end need from a training
run, so they import this module and not the trainer.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

from .atomic import atomic_write
from .errors import CheckpointError
from .models import Generator

__all__ = ["CheckpointError", "load_generators", "load_network", "save_model_atomic"]


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to a temporary ``.keras`` file, then rename into place."""
    with atomic_write(path) as temporary:
        model.save(temporary)
    return Path(path)


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
