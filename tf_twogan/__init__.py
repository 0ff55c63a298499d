"""tf_twogan: the two-layer GAN for infrared + visible image fusion in TensorFlow/Keras.

Modules follow the data path (docs/DESIGN.md section 12): ``images`` -> ``store`` -> ``data`` ->
``models``/``losses``/``gan`` -> ``training`` -> ``inference``/``export`` ->
``metrics``/``evaluate``; ``cli`` is the ``twogan`` command.  Importing the package
does not import TensorFlow, so ``twogan evaluate`` and ``twogan prepare`` start fast.

The everyday names are here (:data:`__all__`), each imported from its module on first
use (PEP 562 ``__getattr__``), so ``from tf_twogan import Fuser`` works and
``import tf_twogan`` stays light.

Example:
    >>> from tf_twogan import Fuser, preset, train
"""
from importlib import import_module

from .console import quiet_tensorflow_env

__version__ = "0.1.0"

# public name -> the module that owns it
_PUBLIC = {
    "Fuser": "inference", "FusionGanFuser": "fusiongan", "TwoGanConfig": "config", "preset": "config",
    "train": "training", "prepare_store": "store", "verify_store": "store", "evaluate_folders": "evaluate",
    "fuse_video": "video", "export_savedmodel": "export", "export_model": "export", "RuntimeFuser": "runtime",
}
__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    """Import a public name's module on first use (TensorFlow loads only with the names that need it)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))

# Notebooks and scripts import tf_twogan before TensorFlow: ask TensorFlow's C++ side for
# errors only, so that a CPU machine shows no "failed call to cuInit" line (TWOGAN_VERBOSE=1 keeps them).
quiet_tensorflow_env()
