"""What ``twogan train`` tells its user: which GAN of the chain trains, its epochs, and the whole chain's progress.

A header names each GAN and what it does (``GAN 2 of 3: G2, visible as input, ...``)
and whether it starts, resumes, is extended or is skipped; after each epoch one line
gives the epoch's losses and the chain's progress with the elapsed time and an
estimate of the time left.  The lines are plain text: on a terminal Keras' progress
bars run between them, otherwise (a log file, a pipe) they are the whole log, one
line per epoch (see :func:`wants_bars`).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

import keras

from .gan import PairRoles

KIND_NAMES = {"ir": "infrared", "vis": "visible", "irv": "I_IRV", "vir": "I_VIR"}
SHOWN_LOSSES = ("g_loss", "d_loss")


def wants_bars(verbose: int | str, stream: TextIO | None = None) -> bool:
    """Keras' progress bars for ``verbose`` 1, or for ``"auto"`` when ``stream`` (default stdout) is a terminal."""
    stream = stream or sys.stdout
    return verbose == 1 or (verbose == "auto" and hasattr(stream, "isatty") and stream.isatty())


@dataclass
class Stage:
    """One GAN of the chain: its roles, its place (``number`` of ``count``), epochs done before this run and epochs to reach."""

    roles: PairRoles
    number: int
    count: int
    done: int
    epochs: int
    pending: bool = True  # trains (or saves its networks) in this run
    extends: bool = False  # finished before with fewer epochs: continues from its kept state
    adopted: bool = False  # taken from another run (--first-layer-from)

    @property
    def label(self) -> str:
        return f"GAN {self.number} of {self.count}" if self.count > 1 else "FusionGAN"

    @property
    def short(self) -> str:
        return f"GAN {self.number}" if self.count > 1 else "FusionGAN"


def describe(roles: PairRoles) -> str:
    """What a GAN does in words: its generator, input, and the images it takes intensity and gradients from."""
    generator = "G" if roles.name == "fusiongan" else f"G{roles.name[-1]}"
    words = lambda kinds: " and ".join(KIND_NAMES[kind] for kind in kinds)  # noqa: E731
    return (f"{generator}, {KIND_NAMES[roles.inputs[0]]} as input, intensity from {words(roles.intensity_target)}, "
            f"gradients from {words(roles.gradient_target)}")


def duration(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ChainProgress:
    """Prints the chain's headers and per-epoch lines to ``stream`` (default stdout); silent when not ``enabled``.

    The time left is the mean wall time of the epochs trained in this process times
    the epochs left in the whole chain (GAN 3's epochs may cost a little more or less).
    """

    def __init__(self, stages: list[Stage], enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stages, self.enabled, self.stream = stages, enabled, stream
        self.total = sum(stage.epochs for stage in stages)
        self.completed = sum(min(stage.done, stage.epochs) for stage in stages)
        self.trained, self.started = 0, time.monotonic()

    def say(self, text: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stdout
            print(text, file=stream, flush=True)

    def begin(self, stage: Stage) -> None:
        """The GAN's header: what it does, and whether it starts, resumes, continues a finished run or is skipped."""
        if stage.adopted:
            self.say(f"{stage.label}: {describe(stage.roles)}: taken from the first layer of --first-layer-from, skipped")
        elif not stage.pending:
            self.say(f"{stage.label}: {describe(stage.roles)}: finished earlier ({stage.epochs} epochs), skipped")
        elif stage.extends:
            self.say(f"{stage.label}: {describe(stage.roles)}: extended from {stage.done} to {stage.epochs} epochs "
                     "(continues from its kept training state)")
        elif stage.done >= stage.epochs:
            self.say(f"{stage.label}: {describe(stage.roles)}: all {stage.epochs} epochs trained, saving its networks")
        elif stage.done:
            self.say(f"{stage.label}: {describe(stage.roles)}\n{stage.short} resumes at epoch {stage.done + 1} of {stage.epochs}")
        else:
            self.say(f"{stage.label}: {describe(stage.roles)}: {stage.epochs} epochs")

    def callback(self, stage: Stage) -> keras.callbacks.Callback:
        """A callback that prints one line per finished epoch of ``stage``."""
        return _EpochLine(self, stage)

    def epoch_done(self, stage: Stage, epoch: int, logs: dict) -> None:
        self.trained += 1
        self.completed += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.trained * (self.total - self.completed)
        losses = ", ".join(f"{name} {float(logs[name]):.4g}" for name in SHOWN_LOSSES if name in logs)
        seconds = f", {logs['epoch_seconds']:.1f} s" if "epoch_seconds" in logs else ""
        self.say(f"{stage.short} epoch {epoch + 1}/{stage.epochs}: {losses}{seconds}; chain {self.completed}/{self.total} epochs, "
                 f"{duration(elapsed)} elapsed, about {duration(left)} left")


class _EpochLine(keras.callbacks.Callback):
    """Reports each finished epoch to a :class:`ChainProgress`."""

    def __init__(self, progress: ChainProgress, stage: Stage) -> None:
        super().__init__()
        self.progress, self.stage = progress, stage

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.epoch_done(self.stage, epoch, logs or {})
