"""The package's error base class: every error a user can fix derives from :class:`TwoGanError`.

Each module keeps the subclass for what it owns (``ConfigError`` in config,
``ImageError`` in images, ``StoreError`` in store, ``InferenceError`` in inference,
``ExportError`` in export); :class:`CheckpointError` lives here because two modules
load checkpoints (``networks_io`` for ``.keras`` files, ``fusiongan`` for the original
TF1 checkpoints).  The subclasses also derive from ``ValueError``, as they always
did, so ``except ValueError`` in callers keeps working.

The ``twogan`` command catches ``TwoGanError`` (and ``OSError`` from user paths)
and prints one line; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class TwoGanError(Exception):
    """An error in what the user gave (a path, an image, a store, a config); the message names it."""


class CheckpointError(TwoGanError, ValueError):
    """A network or checkpoint file cannot be loaded (corrupt, another format, or it would run code); the message names it."""


class OutputError(OSError):
    """An output file could not be written (disk full, quota); the message names it.

    An ``OSError`` (the CLI reports those in one line), not a :class:`TwoGanError`.
    """


def one_line(error: BaseException) -> str:
    """The message ``twogan`` prints for a user's error, on one line.

    An ``OSError`` with a path becomes ``<path>: <problem>`` without Python's
    ``[Errno N]``; a folder that cannot be made because a file has its name says so
    (Python says ``File exists``).
    """
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        path = os.fsdecode(error.filename)
        if error.errno in (errno.EEXIST, errno.ENOTDIR):
            blocking = next((part for part in (path, *map(str, Path(path).parents))
                             if os.path.lexists(part) and not os.path.isdir(part)), None)
            if blocking is not None:
                return f"{blocking}: is a file, where a folder is needed"
        return f"{path}: {error.strerror}"
    return " ".join(str(error).splitlines()) or type(error).__name__
