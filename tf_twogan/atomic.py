"""Atomic file writes: write beside the target under a temporary name, then rename into place.

Readers never see a half-written file, and a process killed at any instant leaves at
most a stray ``.twogan-tmp.<pid>.<random>.<name>`` file beside the target; run folders
and folder fusion remove those of dead processes (:func:`tf_twogan.locking.remove_stray_temporaries`),
never a user's own files.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputError

# errors of a full disk or quota: reported in one line naming the output file
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> tuple[Path, Path]:
    """A new empty temporary file beside ``target`` and the target.

    The temporary is ``.twogan-tmp.<pid>.<random>.<target name>``: it ends like the
    target, so Keras (``.weights.h5``) and imageio pick the format, and
    :mod:`tf_twogan.locking` recognises it.  Of a long target name only the end
    that fits the folder's name limit is kept (:func:`temporary_suffix`), so every
    name the file system takes can be written.  ``suffix``, if given, must be an ending of
    the target's name (kept for writers that insist on one).  The caller writes the
    first and ``os.replace``-s it onto the second; prefer :func:`atomic_write`, which
    also removes the temporary when the write fails.
    """
    from .locking import temporary_prefix

    target = Path(target)
    if suffix is not None and not target.name.endswith(suffix):
        raise ValueError(f"{target}: the temporary ends like the target, not in {suffix!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(), suffix=temporary_suffix(target), dir=target.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
    return Path(temporary), target


def temporary_suffix(target: Path) -> str:
    """``.<target name>``, or of a name too long for a temporary (255 bytes with the prefix) its end that fits."""
    from .locking import temporary_prefix

    try:
        limit = os.pathconf(target.parent, "PC_NAME_MAX")
    except OSError:
        limit = 255
    room = limit - len(temporary_prefix()) - 8 - 1  # mkstemp's 8 random characters, the dot
    name = target.name
    while len(name.encode(errors="surrogateescape")) > room:
        name = name[1:]
    return f".{name}"


@contextmanager
def atomic_write(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``, on failure delete it.

    A full disk or quota becomes an :class:`~tf_twogan.errors.OutputError` naming ``target``.

    Example:
        >>> with atomic_write("out/table.md") as temporary:
        ...     temporary.write_text(table)
    """
    from .locking import lock_file

    temporary, target = atomic_path(target, suffix)
    held = os.open(temporary, os.O_RDWR)
    lock_file(held)  # while it is written: no clean-up removes it (locking.remove_stray_temporaries)
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as error:
        if error.errno in _NO_SPACE:
            raise OutputError(f"{target}: cannot be written: {os.strerror(error.errno)} (nothing written under this name)") from None
        if str(temporary) in (error.filename, error.filename2):  # name the file asked for, not the temporary
            raise OutputError(f"{target}: cannot be written: {error.strerror}") from None
        raise
    finally:
        temporary.unlink(missing_ok=True)
        os.close(held)
