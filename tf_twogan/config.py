"""Configuration as data: frozen, validated dataclasses, presets and JSON round trip.

Every constant of the paper (docs/DESIGN.md sections 2-4) is a field here, so an ablation is a
config change, and the resolved config is written beside every checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import TwoGanError

FORMAT_VERSION = 1


class ConfigError(TwoGanError, ValueError):
    """A configuration value is unknown or out of range; the message names it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value never floods a message."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxtuple = short.maxdict = 8
    text = short.repr(value)
    return text if len(text) <= 4 * limit else text[:4 * limit] + "..."


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a config value has the declared type: bool only for bool, int not bool, float from int or float."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_type_ok(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is str:
        return type(value) is str
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return type(value) is tuple and all(_type_ok(entry, item) for entry in value)
    return isinstance(value, hint)


def _check_types(instance: Any, section: str) -> None:
    """Refuse any field of a config dataclass whose value has the wrong type, naming the field."""
    hints = typing.get_type_hints(type(instance))
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        if not _type_ok(value, hints[item.name]):
            hint = hints[item.name]
            expected = hint.__name__ if isinstance(hint, type) else str(hint).replace("NoneType", "None")
            raise ConfigError(f"{section}{item.name} must be of type {expected}, got {type(value).__name__} {_show(value)}")


def _positive_ints(name: str, values: tuple[int, ...], length: int | None = None) -> None:
    _require(all(isinstance(v, int) and v > 0 for v in values), f"{name} must be positive integers, got {values}")
    if length is not None:
        _require(len(values) == length, f"{name} must have {length} entries, got {len(values)}")


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator G of docs/DESIGN.md section 2: four kxk conv+BN+LeakyReLU layers, a 1x1 conv, tanh.

    ``input_mode="paired"`` feeds [primary, other] (FusionGAN's convention);
    ``"single"`` is the literal reading of the paper (primary image only).
    ``pad_mode="reflect"`` pads the input so the output keeps the input size;
    ``"none"`` gives FusionGAN's shrinking valid convolutions.
    """

    widths: tuple[int, ...] = (256, 128, 64, 32)
    kernel_sizes: tuple[int, ...] = (3, 3, 3, 3)
    input_mode: str = "paired"
    conv_bias: bool = True
    pad_mode: str = "reflect"
    spectral_norm: bool = False
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        _check_types(self, "generator.")
        _positive_ints("generator.widths", self.widths)
        _positive_ints("generator.kernel_sizes", self.kernel_sizes, len(self.widths))
        _require(all(k % 2 == 1 for k in self.kernel_sizes), f"generator.kernel_sizes must be odd, got {self.kernel_sizes}")
        _require(self.input_mode in ("paired", "single"), f"generator.input_mode must be 'paired' or 'single', got {_show(self.input_mode)}")
        _require(self.pad_mode in ("reflect", "none"), f"generator.pad_mode must be 'reflect' or 'none', got {_show(self.pad_mode)}")
        _require(0.0 <= self.leaky_slope < 1.0, f"generator.leaky_slope must be in [0, 1), got {self.leaky_slope}")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator D of docs/DESIGN.md section 2: stride-2 valid 3x3 convs, BN, LeakyReLU, one linear unit.

    ``batch_norm_from`` is the index of the first conv layer with BatchNorm: 0 for
    the paper ("from layer 1 to layer 4"), 1 for FusionGAN.
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)
    batch_norm_from: int = 0
    spectral_norm: bool = False
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        _check_types(self, "discriminator.")
        _positive_ints("discriminator.widths", self.widths)
        _require(0 <= self.batch_norm_from <= len(self.widths), f"discriminator.batch_norm_from must be in [0, {len(self.widths)}], got {self.batch_norm_from}")
        _require(0.0 <= self.leaky_slope < 1.0, f"discriminator.leaky_slope must be in [0, 1), got {self.leaky_slope}")


@dataclass(frozen=True)
class LabelRange:
    """A soft label drawn uniformly from [low, high] per sample (constant when equal)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_types(self, "label range ")
        _require(self.low <= self.high, f"label range low must not exceed high, got [{self.low}, {self.high}]")

    @classmethod
    def constant(cls, value: float) -> "LabelRange":
        return cls(value, value)


@dataclass(frozen=True)
class LossConfig:
    """Loss constants of docs/DESIGN.md section 3.

    Defaults are the paper's: generator target l1 = 0.8, real label alpha = 0.8,
    fake label beta = 0.2, gradient weight xi = 5 (FusionGAN).  The content weights
    are lambda = 2 for the first layer and zeta = 100 for the second.
    """

    generator_target: LabelRange = field(default_factory=lambda: LabelRange.constant(0.8))
    real_label: LabelRange = field(default_factory=lambda: LabelRange.constant(0.8))
    fake_label: LabelRange = field(default_factory=lambda: LabelRange.constant(0.2))
    gradient_weight: float = 5.0
    first_layer_content_weight: float = 2.0
    second_layer_content_weight: float = 100.0

    def __post_init__(self) -> None:
        _check_types(self, "loss.")
        for name in ("gradient_weight", "first_layer_content_weight", "second_layer_content_weight"):
            _require(getattr(self, name) >= 0, f"loss.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol of docs/DESIGN.md section 4.

    ``steps_per_epoch=None`` means one pass over the store.  ``swap_second_layer``
    feeds [I_VIR, I_IRV] to G3 with I_IRV as D3's real image (the paper's variant).
    ``precision`` is ``float32`` or ``mixed_bfloat16`` (bf16 compute, float32
    variables and losses).  ``adam_epsilon``: Keras' 1e-7 by default; FusionGAN's
    TF1 ``AdamOptimizer`` used 1e-8.
    """

    learning_rate: float = 1e-4
    adam_epsilon: float = 1e-7
    batch_size: int = 32
    epochs: int = 10
    steps_per_epoch: int | None = None
    discriminator_steps: int = 2
    seed: int | None = None
    swap_second_layer: bool = False
    precision: str = "float32"
    shuffle_window: int = 8

    def __post_init__(self) -> None:
        _check_types(self, "train.")
        _require(0 < self.learning_rate < float("inf"), f"train.learning_rate must be > 0 and finite, got {self.learning_rate}")
        _require(0 < self.adam_epsilon < 1, f"train.adam_epsilon must be in (0, 1), got {self.adam_epsilon}")
        for name in ("batch_size", "epochs", "discriminator_steps", "shuffle_window"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value > 0, f"train.{name} must be a positive integer, got {_show(value)}")
        _require(self.steps_per_epoch is None or (isinstance(self.steps_per_epoch, int) and self.steps_per_epoch > 0),
                 f"train.steps_per_epoch must be a positive integer or None, got {_show(self.steps_per_epoch)}")
        _require(self.seed is None or isinstance(self.seed, int), f"train.seed must be an integer or None, got {_show(self.seed)}")
        _require(self.precision in ("float32", "mixed_bfloat16"), f"train.precision must be 'float32' or 'mixed_bfloat16', got {_show(self.precision)}")


@dataclass(frozen=True)
class DataConfig:
    """Patch extraction of docs/DESIGN.md sections 4 and 10: 128x128 patches at stride 12."""

    patch_size: int = 128
    stride: int = 12

    def __post_init__(self) -> None:
        _check_types(self, "data.")
        for name in ("patch_size", "stride"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value > 0, f"data.{name} must be a positive integer, got {_show(value)}")


SECOND_LAYER_TARGETS = ("paper", "irv", "vir", "max_first_layer", "max_sources")
SECOND_LAYER_INITS = ("scratch", "g1")


@dataclass(frozen=True)
class SecondLayerConfig:
    """GAN 3's content targets and start: this project's named alternatives to the paper's reading.

    The paper's reading (``"paper"``, the defaults) takes G3's intensity target from
    I_IRV and its gradient target from I_VIR (swapped by ``train.swap_second_layer``).
    The alternatives (README, "The second layer"):

    * ``"irv"`` / ``"vir"``: that first-layer output;
    * ``"max_first_layer"``: per pixel the larger of I_IRV and I_VIR (intensity), or
      the Laplacian of larger magnitude (gradient);
    * ``"max_sources"``: the same rule over the source images IR and VIS (the
      second-layer store then also holds them).

    ``init="g1"`` starts G3 from G1's trained weights (same architecture) instead of
    from random weights.  ``epochs``: GAN 3's own number of epochs (``None``: ``train.epochs``),
    so second-layer designs can be compared on one first layer at a budget of their own.
    """

    intensity_target: str = "paper"
    gradient_target: str = "paper"
    init: str = "scratch"
    epochs: int | None = None

    def __post_init__(self) -> None:
        _check_types(self, "second_layer.")
        for name in ("intensity_target", "gradient_target"):
            value = getattr(self, name)
            _require(value in SECOND_LAYER_TARGETS, f"second_layer.{name} must be one of {', '.join(SECOND_LAYER_TARGETS)}, got {_show(value)}")
        _require(self.init in SECOND_LAYER_INITS, f"second_layer.init must be one of {', '.join(SECOND_LAYER_INITS)}, got {_show(self.init)}")
        _require(self.epochs is None or (type(self.epochs) is int and self.epochs > 0),
                 f"second_layer.epochs must be a positive integer or null, got {_show(self.epochs)}")


METHODS = ("twogan", "fusiongan")


@dataclass(frozen=True)
class TwoGanConfig:
    """Everything that defines a training run; written as ``config.json``.

    ``method="twogan"`` trains the paper's three GANs; ``"fusiongan"`` trains the
    single GAN of the FusionGAN baseline (docs/DESIGN.md section 7) through the same trainer.
    """

    preset: str = "paper"
    method: str = "twogan"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    second_layer: SecondLayerConfig = field(default_factory=SecondLayerConfig)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check_types(self, "")
        _require(self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {_show(self.method)}")
        _require(self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {_show(self.preset)}")
        _require(self.format_version == FORMAT_VERSION, f"config format_version {self.format_version} is not {FORMAT_VERSION}")

    def replace(self, **sections: Any) -> "TwoGanConfig":
        """A copy with whole sections replaced, or with ``train=dict(...)`` updates merged in."""
        updates = {}
        for name, value in sections.items():
            current = getattr(self, name)
            updates[name] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
        return dataclasses.replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TwoGanConfig":
        """Rebuild a config, rejecting unknown keys and values with their names."""
        return _from_dict(cls, data, "config")

    def to_json(self, path: str | os.PathLike) -> Path:
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return Path(path)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TwoGanConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # ValueError: JSONDecodeError, UnicodeDecodeError
            raise ConfigError(f"{path}: cannot read config ({type(error).__name__}: {_show(str(error), 200)})") from None
        except RecursionError:
            raise ConfigError(f"{path}: cannot read config (JSON nested too deeply)") from None
        try:
            return cls.from_dict(data)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


def _from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain JSON data, recursing into nested dataclasses."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {where} key(s): {', '.join(_show(key)[1:-1] for key in unknown)}")
    values = {}
    for name, value in data.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else fields[name].default
        if dataclasses.is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            values[name] = tuple(value)  # JSON has no tuples; anything else is refused by the type check
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
    except ConfigError as error:
        if cls is LabelRange:  # its own messages do not know which label it is
            raise ConfigError(f"{where}: {error}") from None
        raise


LITE_GENERATOR = GeneratorConfig(widths=(32, 32, 16, 16))
LITE_DISCRIMINATOR = DiscriminatorConfig(widths=(16, 32, 32, 64))


# 40 epochs: with lambda = 2 the first-layer generators learn the intensities only after
# about 2,000 iterations; 8 epochs (the first default) gave flat, grey images (README).
LITE_TRAIN = TrainConfig(learning_rate=5e-4, epochs=40, steps_per_epoch=100, seed=0)

# FusionGAN (Ma et al. 2019) as its original TensorFlow code defines it (docs/DESIGN.md section 7).
FUSIONGAN_GENERATOR = GeneratorConfig(widths=(256, 128, 64, 32), kernel_sizes=(5, 5, 3, 3), pad_mode="none", spectral_norm=True)
FUSIONGAN_DISCRIMINATOR = DiscriminatorConfig(widths=(32, 64, 128, 256), batch_norm_from=1, spectral_norm=True)
FUSIONGAN_LOSS = LossConfig(generator_target=LabelRange(0.7, 1.2), real_label=LabelRange(0.7, 1.2),
                            fake_label=LabelRange(0.0, 0.3), gradient_weight=5.0, first_layer_content_weight=100.0)
FUSIONGAN_DATA = DataConfig(patch_size=132, stride=14)

# ``sharp``: this project's named improvement on the paper's reading (README, "The second
# layer"): the lite networks, FusionGAN's content weight 100 for the first layer (with the
# paper's lambda = 2 the first-layer outputs stay soft), and GAN 3 asked for the stronger
# Laplacian of I_IRV and I_VIR at each pixel, starting from G1's weights, trained for 10
# epochs.  Every other constant is the paper's.
SHARP_LOSS = {"first_layer_content_weight": 100.0}
SHARP_SECOND_LAYER = SecondLayerConfig(gradient_target="max_first_layer", init="g1", epochs=10)

# ``paper_sharp``: the paper's widths, losses and optimiser (the first layer as published,
# so ``checkpoints/paper``'s G1 and G2 can be adopted) with ``sharp``'s second-layer design.
PAPER_SHARP_SECOND_LAYER = dataclasses.replace(SHARP_SECOND_LAYER, epochs=None)

PRESETS = ("paper", "lite", "sharp", "paper_sharp")


def preset(name: str, method: str = "twogan") -> TwoGanConfig:
    """The named preset of a method.

    ``paper``: the published protocol (docs/DESIGN.md section 4, or FusionGAN's own settings
    for ``method="fusiongan"``), a GPU job.  ``lite``: same architecture shape,
    losses, patching and optimiser, narrow networks (generator 32-32-16-16,
    discriminator 16-32-32-64) and a short schedule (40 epochs of 100 batches per GAN,
    Adam 5e-4) that trains on 2 idle CPU cores in about 90 minutes (see README, "Presets").
    ``sharp`` (two-layer GAN only): ``lite`` with :data:`SHARP_LOSS` and
    :data:`SHARP_SECOND_LAYER`, the lite-width default checkpoint's configuration.
    ``paper_sharp`` (two-layer GAN only): ``paper`` with ``sharp``'s second layer
    (:data:`PAPER_SHARP_SECOND_LAYER`), trained on ``checkpoints/paper``'s first layer.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {_show(name)} (choose {', '.join(PRESETS)})")
    if name in ("sharp", "paper_sharp"):
        if method != "twogan":
            raise ConfigError(f"preset {_show(name)} is a two-layer GAN configuration, not one of method {_show(method)}")
        if name == "paper_sharp":
            return dataclasses.replace(preset("paper").replace(second_layer=PAPER_SHARP_SECOND_LAYER), preset=name)
        lite = preset("lite")
        return dataclasses.replace(lite.replace(loss=SHARP_LOSS, second_layer=SHARP_SECOND_LAYER), preset="sharp")
    if method == "twogan":
        base = TwoGanConfig(preset=name)
    elif method == "fusiongan":
        base = TwoGanConfig(preset=name, method="fusiongan", generator=FUSIONGAN_GENERATOR,
                            discriminator=FUSIONGAN_DISCRIMINATOR, loss=FUSIONGAN_LOSS, data=FUSIONGAN_DATA,
                            train=TrainConfig(adam_epsilon=1e-8))
    else:
        raise ConfigError(f"unknown method {_show(method)} (choose {' or '.join(METHODS)})")
    if name == "lite":
        base = base.replace(generator={"widths": LITE_GENERATOR.widths}, discriminator={"widths": LITE_DISCRIMINATOR.widths},
                            train=dataclasses.replace(LITE_TRAIN, adam_epsilon=base.train.adam_epsilon))
    return base
