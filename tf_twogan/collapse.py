"""Collapse detection: stop a training whose generator has degenerated, before its backup is overwritten.

A GAN can diverge (NaN) or collapse to one grey level everywhere.  After each epoch
:class:`CollapseCheck` runs the generator over the run's fixed sample patches (the
TensorBoard sample) and raises :class:`CollapseError` when the output is not finite,
or when every sample patch has become a single grey level although its inputs are
not.  It sits before the history and backup callbacks, so the backup keeps the last
good epoch.  A generator starts constant too (a run of 20 batches of 4 at the tiny
test widths still gives grey 126 everywhere): still constant at its last epoch, it
gets a warning instead.
"""
from __future__ import annotations

import sys

import keras
import numpy as np

from .errors import TwoGanError

GREY_LEVEL = 2 / 255  # one uint8 grey level on the generator's [-1, 1] scale


class CollapseError(TwoGanError):
    """A GAN's generator degenerated during training; the message names the GAN, the epoch and what to try."""


def degeneracy(generated: np.ndarray, inputs: np.ndarray) -> str | None:
    """How a batch of generated patches (on [-1, 1]) is degenerate, in words, or None if it is not.

    Not finite, or each patch spans less than one grey level while some input patch spans more.
    """
    if not np.all(np.isfinite(generated)):
        return "its fused sample is not a number (NaN or infinite)"
    span = lambda batch: np.ptp(batch.reshape(len(batch), -1), axis=1)  # noqa: E731
    if np.all(span(generated) < GREY_LEVEL) and np.any(span(inputs) >= GREY_LEVEL):
        value = int(np.clip(np.round((float(np.mean(generated)) + 1) * 127.5), 0, 255))
        return f"its fused sample is constant (grey value {value} everywhere)"
    return None


class CollapseCheck(keras.callbacks.Callback):
    """After each epoch, raise :class:`CollapseError` if the generator's output on ``samples`` has degenerated.

    Not finite output or losses stop at any epoch.  A constant output is how every
    generator starts (and stays for some dozens of batches), so it stops the run only
    after an epoch with a varied output (a collapse); still constant at the last
    epoch, the GAN learnt nothing: a warning on stderr says so and how to train it
    further (tests of a few batches end there, and must finish).

    Args:
        samples: a fixed batch of the GAN's patches (kinds stacked as in training), e.g.
            :func:`tf_twogan.callbacks.sample_patches`.
        name: the GAN as the message names it, e.g. ``"GAN 2"``.
        epochs: the epochs ``fit`` trains to.
    """

    def __init__(self, samples: np.ndarray, name: str, epochs: int) -> None:
        super().__init__()
        self.samples, self.name, self.epochs = samples, name, epochs
        self.varied = False  # an epoch of this process gave a varied output

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        inputs, *_ = self.model.unpack_batch(self.samples)
        generated = keras.ops.convert_to_numpy(self.model.generator(inputs, training=False)).astype(np.float32)
        problem = degeneracy(generated, keras.ops.convert_to_numpy(inputs))
        losses = [float(value) for key, value in (logs or {}).items() if key.endswith("loss")]
        if problem is None and not np.all(np.isfinite(losses)):
            problem = "its losses are not a number"
        kept = f"the backup of epoch {epoch} is kept" if epoch else "no epoch was saved"
        if problem is None:
            self.varied = True
        elif "constant" not in problem or self.varied:
            raise CollapseError(f"{self.name} collapsed at epoch {epoch + 1}: {problem}; {kept}. "
                                "Try a new --out with a lower --learning-rate or another --seed")
        elif epoch + 1 >= self.epochs:
            print(f"warning: {self.name} learnt nothing in its {self.epochs} epoch(s): {problem}. Train it longer: "
                  "rerun with a larger --epochs (or use more --steps-per-epoch in a new --out)", file=sys.stderr, flush=True)
