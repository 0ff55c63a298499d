"""Shared fixtures: a tiny random-weight two-layer GAN checkpoint folder.

The networks are narrow (widths 8, 8, 4, 4) so tests run in seconds, with weights
drawn from a fixed seed and BatchNorm moving statistics perturbed away from
(0, 1) so that a path that ignored them, or used batch statistics, would differ.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_WIDTHS = (8, 8, 4, 4)


def make_checkpoint(folder: Path, widths=TINY_WIDTHS, seed: int = 0, swap_second_layer: bool = False) -> Path:
    """Write g1/g2/g3 ``.keras`` and ``config.json`` with random weights into ``folder``."""
    import keras

    from tf_twogan.config import GeneratorConfig, preset
    from tf_twogan.models import Generator

    rng = np.random.default_rng(seed)
    settings = GeneratorConfig(widths=tuple(widths))
    folder.mkdir(parents=True, exist_ok=True)
    for number in (1, 2, 3):
        generator = Generator.from_settings(settings, name=f"g{number}")
        generator.build()
        weights = []
        for variable in generator.weights:
            shape, name = tuple(variable.shape), variable.path
            if name.endswith("moving_variance"):
                weights.append(rng.uniform(0.5, 2.0, shape))
            elif name.endswith("moving_mean"):
                weights.append(rng.normal(0.0, 0.3, shape))
            elif name.endswith("gamma"):
                weights.append(rng.uniform(0.5, 1.5, shape))
            elif name.endswith("kernel"):
                fan_in = int(np.prod(shape[:-1]))
                weights.append(rng.normal(0.0, 1.5 / np.sqrt(fan_in), shape))
            else:
                weights.append(rng.normal(0.0, 0.1, shape))
        generator.set_weights([w.astype(np.float32) for w in weights])
        keras.saving.save_model(generator, folder / f"g{number}.keras")
    config = preset("lite")
    config = config.replace(generator=settings, train={"swap_second_layer": swap_second_layer})
    config.to_json(folder / "config.json")
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight checkpoint folder (tiny widths), built once per test session."""
    return make_checkpoint(tmp_path_factory.mktemp("tiny_checkpoint"))
