"""tf_twogan: the two-layer GAN for infrared + visible image fusion in TensorFlow/Keras.

Modules follow the data path (docs/DESIGN.md section 12): ``images`` -> ``store`` -> ``data`` ->
``models``/``losses``/``gan`` -> ``training`` -> ``inference``/``export`` ->
``metrics``/``evaluate``; ``cli`` is the ``twogan`` command.  Importing the package
does not import TensorFlow, so ``twogan evaluate`` and ``twogan prepare`` start fast.
"""
from .console import quiet_tensorflow_env

__version__ = "0.1.0"

# Notebooks and scripts import tf_twogan before TensorFlow: ask TensorFlow's C++ side for
# errors only, so that a CPU machine shows no "failed call to cuInit" line (TWOGAN_VERBOSE=1 keeps them).
quiet_tensorflow_env()
