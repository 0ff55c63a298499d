"""Atomic file writes: write beside the target under a temporary name, then rename into place.

Readers never see a half-written file, and a process killed at any instant leaves at
most a stray ``.<stem>.<random>.tmp<suffix>`` file beside the target (run folders
remove those on the next run).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> tuple[Path, Path]:
    """A new empty temporary file beside ``target`` (same folder, ending in ``suffix``, default the target's) and the target.

    The caller writes the first and ``os.replace``-s it onto the second; prefer
    :func:`atomic_write`, which also removes the temporary when the write fails.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
    return Path(temporary), target


@contextmanager
def atomic_write(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``, on failure delete it.

    ``suffix``: the temporary's ending when a writer insists on one (Keras wants
    ``.weights.h5``); default the target's suffix.

    Example:
        >>> with atomic_write("out/table.md") as temporary:
        ...     temporary.write_text(table)
    """
    temporary, target = atomic_path(target, suffix)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
