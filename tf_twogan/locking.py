"""Exclusive locks on output folders, and the package's own temporary file names.

Two ``twogan train`` on one run folder would delete each other's files, so
:class:`FolderLock` holds an ``fcntl.flock`` on ``<folder>/twogan.lock`` (which
records the holder's pid) for the whole run.  The kernel drops the lock when its
process dies, even by ``kill -9``: the lock file a killed run leaves behind is
stale, and the next run takes it over atomically (no pid guessing, no race).

Every temporary file this package writes is named ``.twogan-tmp.<pid>.<random>.<name>``
(:func:`temporary_prefix`), so a stray-temporary cleanup can tell its own files
from a user's ``.notes.tmp.txt`` and leaves those of a live process alone
(:func:`remove_stray_temporaries`).  No TensorFlow here.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
from pathlib import Path

from .errors import TwoGanError

LOCK_NAME = "twogan.lock"
TEMPORARY_MARK = ".twogan-tmp."
_TEMPORARY = re.compile(r"^\.twogan-tmp\.(\d+)\.[A-Za-z0-9_]+\..+$")


class LockError(TwoGanError, ValueError):
    """A folder is locked by another running ``twogan`` process; the message names it and its pid."""


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def temporary_prefix() -> str:
    """Prefix of this process's temporary names: ``.twogan-tmp.<pid>.`` (the random part and the final name follow)."""
    return f"{TEMPORARY_MARK}{os.getpid()}."


def temporary_owner(path: str | os.PathLike) -> int | None:
    """The pid that wrote a package temporary file, or None if ``path`` is not one of ours."""
    match = _TEMPORARY.match(Path(path).name)
    return int(match.group(1)) if match else None


def remove_stray_temporaries(folder: str | os.PathLike, target: str | os.PathLike | None = None) -> list[Path]:
    """Delete the package temporaries in ``folder`` (those of ``target`` only, if given) left by dead writers; returns them.

    Only names made by :func:`temporary_prefix` are candidates: a user's hidden or
    ``.tmp`` files are never touched, nor the temporaries of a process still running,
    nor a file that a live process holds locked (:func:`tf_twogan.atomic.atomic_write`
    locks its temporary while writing: a writer in another pid namespace, e.g. a
    container sharing the folder, is recognised so).  A temporary folder (a killed
    SavedModel export's) is removed whole once its writer is dead.
    """
    from .atomic import temporary_suffix

    folder = Path(folder)
    if not folder.is_dir():
        return []
    ending = temporary_suffix(Path(folder, Path(target).name)) if target is not None else ""
    removed = []
    for path in folder.iterdir():
        owner = temporary_owner(path)
        if owner is None or not path.name.endswith(ending) or path.is_symlink() or pid_alive(owner):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file() and _remove_unless_locked(path):
            removed.append(path)
    return removed


def lock_file(fd: int) -> bool:
    """Lock the whole file open as ``fd`` (for writing) until it is closed; False if someone else holds a lock on it.

    An open-file-description lock (Linux ``F_OFD_SETLK``): unlike ``flock``, which
    libhdf5 takes on the files it writes, the two do not conflict, and unlike a POSIX
    ``lockf`` it is kept when the writer opens and closes the file through another
    descriptor.  Where the system lacks it, nothing is locked (True).
    """
    if not hasattr(fcntl, "F_OFD_SETLK"):
        return True
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held elsewhere
        return False
    return True


def _remove_unless_locked(path: Path) -> bool:
    """Unlink ``path`` while holding its lock; False if a live process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        if not lock_file(fd):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


class FolderLock:
    """An exclusive lock on a folder (created if needed) for the lifetime of a command.

    Args:
        folder: the folder to lock, e.g. a run folder.
        command: the command named in the error, e.g. ``"twogan train"``.

    Raises :class:`LockError` naming the folder and the holder's pid if another
    process holds it.  Use as a context manager; leaving it removes the lock file.

    Example:
        >>> with FolderLock("runs/lite", "twogan train"):
        ...     pass  # nobody else trains into runs/lite meanwhile
    """

    def __init__(self, folder: str | os.PathLike, command: str = "twogan") -> None:
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        if self.folder.exists() and not self.folder.is_dir():
            raise LockError(f"{self.folder}: exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise LockError(f"{self.folder}: in use by another {self.command} (pid {holder}, lock {self.path}); "
                                "wait for it to finish or stop it, or choose another folder") from None
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                break
            os.close(fd)  # the holder released (and removed) the file we opened: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in this order, so no one locks a removed file for good)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
