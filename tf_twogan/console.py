"""What the user sees in a terminal or notebook: TensorFlow's log lines and progress bars.

TensorFlow 2.21 prints about seven lines when it is imported and first used on a CPU
machine (oneDNN notices, "Could not find cuda drivers", and
``E0000 ... failed call to cuInit``), which a user reads as errors.  Most come from
C++ before absl logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` alone does not
hide them: :func:`import_tensorflow_quietly` also points file descriptor 2 at a
temporary file while TensorFlow is imported, and replays what it caught if the
import fails.  ``--verbose`` or ``TWOGAN_VERBOSE=1`` keeps everything.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

VERBOSE_ENV = "TWOGAN_VERBOSE"


def verbose_requested() -> bool:
    """Whether ``TWOGAN_VERBOSE`` asks for TensorFlow's log lines (any value but empty or 0)."""
    return os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


def quiet_tensorflow_env() -> None:
    """Ask TensorFlow's C++ side for errors only (``TF_CPP_MIN_LOG_LEVEL=3``) unless verbose.

    Takes effect only before TensorFlow is imported; a value the user set is kept.
    """
    if not verbose_requested():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def stderr_captured() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file; replay it to stderr if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            sys.stderr.write(caught.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly(verbose: bool = False) -> None:
    """Import TensorFlow with its start-up log lines hidden (kept when ``verbose``).

    Also sets the Python ``tensorflow`` and ``absl`` loggers to errors only.  Does
    nothing visible when TensorFlow is already imported.
    """
    verbose = verbose or verbose_requested()
    if verbose:
        import tensorflow  # noqa: F401
        return
    quiet_tensorflow_env()
    if "tensorflow" not in sys.modules:
        with stderr_captured():
            import tensorflow  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def _tqdm_class():
    """tqdm's notebook widget bar when ipywidgets is installed, else the text bar.

    ``tqdm.auto`` without ipywidgets warns "IProgress not found" in every notebook cell.
    """
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from tqdm.std import tqdm
        return tqdm
    from tqdm.auto import tqdm
    return tqdm


LOG_INTERVAL = 30.0
"""Seconds between progress-bar redraws when the output is not a terminal."""


def tqdm(*args, **kwargs):
    """A progress bar (``tqdm.tqdm`` arguments) that never warns about missing notebook widgets, and
    redraws at most every :data:`LOG_INTERVAL` seconds into a file or pipe, whose log its
    carriage-return redraws would fill (the final count and rate are still written)."""
    bar = _tqdm_class()
    if bar.__module__ != "tqdm.notebook" and not (kwargs.get("file") or sys.stderr).isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL)
    return bar(*args, **kwargs)
