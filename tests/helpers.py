"""Plain helpers shared by the tests (constants, file readers, random images, tiny configs); fixtures are in conftest.py."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from tf_twogan.datasets import data_root, shared_data, split_file

REPO = Path(__file__).resolve().parents[1]
DATA = data_root()  # $TWOGAN_DATA, else ../shared/data beside the repository, else the user cache (docs/DATA.md)
TNO = DATA / "tno"
MINI_PAIRS = ["2", "24"]  # two small TNO training pairs (595x328 and 620x450)
TINY_WIDTHS = (8, 8, 4, 4)
NEED_DATA_ENV = "TWOGAN_TESTS_NEED_DATA"  # when set, a test whose dataset is missing fails instead of skipping
DATASET_TITLES = {"tno": "TNO", "roadscene": "RoadScene", "vifb": "VIFB"}


def cannot_run(reason: str) -> NoReturn:
    """End a test that lacks something it needs: a skip in a clone without ``../shared/data``, a failure where
    everything is expected (the data root is ``../shared/data``, or ``$TWOGAN_TESTS_NEED_DATA`` is set)."""
    if os.environ.get(NEED_DATA_ENV) or DATA == shared_data():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def need_dataset(name: str) -> Path:
    """``<data root>/<name>``, or :func:`cannot_run` naming the command that fetches it (the ``needs_data`` marker's check)."""
    folder = DATA / name
    if not folder.is_dir():
        cannot_run(f"{DATASET_TITLES.get(name, name)} not found under {DATA}: run `twogan data fetch {name}`")
    return folder


def tno_split() -> dict:
    return json.loads(split_file("tno").read_text())


def history_epochs(path: Path) -> list[int]:
    """Epochs logged so far in a run's history CSV, parsed from one snapshot of the file.

    Also polled while a trainer appends: csv.DictReader on the open file would ask it for
    lines again after an EOF on the still-empty file and take the first data row for the
    header (seen in CI as KeyError 'epoch').
    """
    if not path.is_file():
        return []
    return [int(row["epoch"]) for row in read_csv(path)]


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts, read in one go (the file is closed on return)."""
    with Path(path).open(newline="") as handle:
        snapshot = handle.read()
    return list(csv.DictReader(io.StringIO(snapshot)))


def random_gray(height: int, width: int, seed: int = 0, count: int | None = None):
    """A uint8 white-noise gray image (or a tuple of ``count`` of them drawn in turn from one seeded generator)."""
    rng = np.random.default_rng(seed)
    images = tuple(rng.integers(0, 256, (height, width)).astype(np.uint8) for _ in range(count or 1))
    return images[0] if count is None else images


def tiny_training_config(**train):
    """The ``lite`` preset with tiny networks (a GAN trains in seconds) and the given ``train`` settings."""
    from tf_twogan.config import preset

    return preset("lite").replace(generator={"widths": (4, 4, 4, 4)}, discriminator={"widths": (4, 4, 8, 8)}, train=train)


TINY_CHAIN = tiny_training_config(batch_size=4, epochs=1, steps_per_epoch=2, seed=1)  # the shared ``tiny_run``'s config


def gan3_train_argv(store: Path, out: Path, config: Path, first_layer: Path) -> list[str]:
    """``twogan train`` of ``config`` that takes G1/G2 from the finished run ``first_layer`` and trains GAN 3 alone."""
    return ["train", "--store", str(store), "--out", str(out), "--config", str(config),
            "--first-layer-from", str(first_layer), "--quiet"]


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
