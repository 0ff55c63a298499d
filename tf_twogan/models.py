"""The generator and discriminator networks (docs/DESIGN.md section 2), as Keras subclassed models.

Both classes are registered for safe ``.keras`` loading and carry every constructor
argument in ``get_config``.  The generator keeps the reflect padding and the valid
conv stack separate (:meth:`Generator.pad`, :meth:`Generator.conv_stack`) so that
inference can pad a whole image once and run the stack over overlapping tiles.

BatchNorm normalises with the statistics of the *global* batch when a network is
built with ``synchronized_batch_norm=True`` (the replicas all-reduce their sums), which
:func:`tf_twogan.training.train_pair` asks for under a strategy with several replicas,
so a mirrored run trains like one device with the same global batch.  Otherwise the
plain layer is used: single-device results do not change.  Saved files never record
the choice (it is not in ``get_config``): a loaded network has plain BatchNorm.

TensorFlow ops remain in the two layers that reproduce a kernel: the fused
BatchNorm and FusionGAN's spectral norm (see their docstrings).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import keras
import tensorflow as tf
from keras import layers, ops

from .config import DiscriminatorConfig, GeneratorConfig

# FusionGAN's tf.contrib batch_norm settings (decay 0.9, epsilon 1e-5).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="tf_twogan")
class BatchNormalization(layers.BatchNormalization):
    """Keras ``BatchNormalization`` whose training pass is TensorFlow's fused kernel.

    The class keeps Keras' name on purpose: ``.keras`` files store a layer's weights
    under its snake-cased class name, so networks saved with the plain layer (the
    shipped checkpoint) load into this one and vice versa.

    Keras 3 normalises with separate moment, subtract, scale and shift ops; on CPU
    ``FusedBatchNormV3`` (oneDNN) does it in one pass forward and one backward,
    which makes a paper-preset training iteration 20 % faster (README, "Training
    speed").  Outputs, gradients and moving statistics are Keras' own: the fused op
    averages the unbiased batch variance, so it is rescaled by (n - 1) / n here.
    Inference, synchronized BatchNorm and non-4D inputs use the Keras path.
    """

    def call(self, inputs: tf.Tensor, training: bool | None = None, mask: tf.Tensor | None = None) -> tf.Tensor:
        if not (training and self.trainable) or self.synchronized or mask is not None or len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
            tf.cast(inputs, tf.float32), self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = unbiased_variance * tf.maximum(count - 1.0, 0.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def _batch_norm(name: str, synchronized: bool) -> layers.Layer:
    """BatchNorm with FusionGAN's settings, synchronized over replicas or not."""
    return BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, synchronized=synchronized, name=name)


@keras.saving.register_keras_serializable(package="tf_twogan")
class WeightSpectralNorm(layers.Wrapper):
    """FusionGAN's ``weights_spectral_norm``: the raw kernel is trained, ``kernel / sigma`` is used.

    sigma comes from one power iteration from the stored vector ``u`` (shape
    (1, filters), updated in training calls), and gradients flow through sigma and
    the iteration, as in the original TF1 graph (Ma et al. 2019, ``utils.py``).
    ``keras.layers.SpectralNormalization`` differs: it overwrites the kernel with
    ``kernel / sigma`` and treats sigma as a constant, which changes the optimisation
    (Adam then moves a normalised kernel, not FusionGAN's raw one).  Wraps ``Conv2D``
    (valid or same padding) or ``Dense``.  The original's ``l2_norm`` is
    ``x / (||x|| + 1e-12)``; ``tf.math.l2_normalize(x, axis=None, epsilon=1e-24)`` is
    ``x / sqrt(max(||x||^2, 1e-24))``, the same to float32 precision unless ``||x|| < 1e-12``
    (the numpy reference is :func:`tf_twogan.fusiongan.l2_normalize`).
    """

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        self.u = self.add_weight(shape=(1, self.layer.kernel.shape[-1]), name="u", trainable=False,
                                 initializer=keras.initializers.TruncatedNormal(stddev=1.0))

    def normalized_kernel(self, training: bool = False) -> tf.Tensor:
        kernel = self.layer.kernel
        matrix = tf.reshape(kernel, (-1, kernel.shape[-1]))
        v = tf.math.l2_normalize(tf.matmul(self.u, matrix, transpose_b=True), axis=None, epsilon=1e-24)
        u = tf.math.l2_normalize(tf.matmul(v, matrix), axis=None, epsilon=1e-24)
        if training:
            self.u.assign(tf.stop_gradient(u))
        sigma = tf.matmul(tf.matmul(v, matrix), u, transpose_b=True)
        return kernel / sigma

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        kernel = tf.cast(self.normalized_kernel(training), inputs.dtype)
        if isinstance(self.layer, layers.Dense):
            outputs = tf.matmul(inputs, kernel)
        else:
            outputs = tf.nn.conv2d(inputs, kernel, strides=self.layer.strides, padding=self.layer.padding.upper())
        if self.layer.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.layer.bias, outputs.dtype))
        return self.layer.activation(outputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)


def conv_weights(layer: layers.Layer) -> tuple[np.ndarray, np.ndarray | None]:
    """The kernel a conv layer applies (normalised under spectral norm) and its bias (or None)."""
    conv = layer.layer if isinstance(layer, WeightSpectralNorm) else layer
    kernel = layer.normalized_kernel() if isinstance(layer, WeightSpectralNorm) else conv.kernel
    return np.asarray(kernel), (np.asarray(conv.bias) if conv.use_bias else None)


def _conv(filters: int, kernel_size: int, strides: int, use_bias: bool, spectral_norm: bool, name: str,
          dtype: str | None = None) -> layers.Layer:
    """A valid conv, wrapped in spectral norm if asked; ``dtype`` (e.g. float32 under mixed precision) for both."""
    conv = layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", use_bias=use_bias,
                         kernel_initializer=keras.initializers.TruncatedNormal(stddev=1e-3), name=name, dtype=dtype)
    return WeightSpectralNorm(conv, name=f"{name}_sn", dtype=dtype) if spectral_norm else conv


@keras.saving.register_keras_serializable(package="tf_twogan")
class Generator(keras.Model):
    """Fusion generator: four kxk conv + BatchNorm + LeakyReLU layers, then 1x1 conv + tanh.

    Args:
        widths: channels of the four hidden conv layers (FusionGAN's 256, 128, 64, 32).
        kernel_sizes: their kernel sizes (3x3 in the paper; FusionGAN uses 5, 5, 3, 3).
        input_mode: ``"paired"`` uses both channels [primary, other]; ``"single"`` only
            the primary one (the paper's literal reading, for ablation).
        conv_bias: keep conv biases before BatchNorm (393,153 parameters by default,
            392,673 without).
        pad_mode: ``"reflect"`` pads the input by :attr:`margin` so the output keeps the
            input size; ``"none"`` shrinks it by ``2 * margin`` (FusionGAN training).
        spectral_norm: wrap every conv in spectral normalisation (FusionGAN).
        leaky_slope: LeakyReLU slope.
        synchronized_batch_norm: BatchNorm over the global batch of all replicas (for
            training under a multi-replica strategy); not saved (module docstring).

    Input: float images in [-1, 1], shape (N, H, W, 2); output (N, H, W, 1) in [-1, 1].

    Example:
        >>> g = Generator(widths=(8, 8, 4, 4))
        >>> g(tf.zeros((1, 101, 137, 2))).shape
        TensorShape([1, 101, 137, 1])

    Reference: Chen, Han & Tian 2021, Fig. 4; Ma et al. 2019 (FusionGAN).
    """

    def __init__(
        self,
        widths: Sequence[int] = (256, 128, 64, 32),
        kernel_sizes: Sequence[int] = (3, 3, 3, 3),
        input_mode: str = "paired",
        conv_bias: bool = True,
        pad_mode: str = "reflect",
        spectral_norm: bool = False,
        leaky_slope: float = 0.2,
        synchronized_batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        self.settings = GeneratorConfig(tuple(widths), tuple(kernel_sizes), input_mode, conv_bias, pad_mode, spectral_norm, leaky_slope)
        self.hidden_layers = []
        for index, (width, kernel_size) in enumerate(zip(self.settings.widths, self.settings.kernel_sizes), start=1):
            self.hidden_layers += [
                _conv(width, kernel_size, 1, conv_bias, spectral_norm, f"conv{index}"),
                _batch_norm(f"bn{index}", self.synchronized_batch_norm),
                layers.LeakyReLU(negative_slope=leaky_slope, name=f"lrelu{index}"),
            ]
        self.output_conv = _conv(1, 1, 1, True, spectral_norm, f"conv{len(self.settings.widths) + 1}", dtype="float32")

    @classmethod
    def from_settings(cls, settings: GeneratorConfig, **kwargs: Any) -> "Generator":
        return cls(**vars(settings), **kwargs)

    @property
    def margin(self) -> int:
        """Pixels the valid conv stack removes from each side (4 for four 3x3 layers)."""
        return sum((k - 1) // 2 for k in self.settings.kernel_sizes)

    @property
    def input_channels(self) -> int:
        return 2

    def select_inputs(self, images: tf.Tensor) -> tf.Tensor:
        """The channels the network sees: both, or the primary one in ``single`` mode."""
        return images[..., :1] if self.settings.input_mode == "single" else images

    def pad(self, images: tf.Tensor) -> tf.Tensor:
        """Reflect-pad by :attr:`margin` (identity in ``pad_mode="none"``)."""
        if self.settings.pad_mode == "none" or self.margin == 0:
            return images
        m = self.margin
        return ops.pad(images, [[0, 0], [m, m], [m, m], [0, 0]], mode="reflect")

    def conv_stack(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The valid conv stack alone: (N, H, W, C) -> (N, H - 2m, W - 2m, 1)."""
        x = self.select_inputs(images)
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        return self.output_conv(x, training=training)

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        return ops.tanh(self.conv_stack(self.pad(images), training=training))

    def flops_per_pixel(self) -> int:
        """Multiply-adds x 2 per output pixel of one forward pass (convs only)."""
        channels = [1 if self.settings.input_mode == "single" else 2, *self.settings.widths]
        flops = sum(k * k * c_in * c_out for k, c_in, c_out in zip(self.settings.kernel_sizes, channels, channels[1:]))
        return 2 * (flops + channels[-1])

    def build(self, input_shape: Any = (None, None, None, 2)) -> None:
        """Build every layer from shapes, then call the model once on a symbolic input.

        The call goes through ``__call__`` (not ``self.call``), so Keras records the model
        as called, which ``model.export`` requires; nothing is computed.
        """
        shape = (None, None, None, 1 if self.settings.input_mode == "single" else self.input_channels)
        for layer in (*self.hidden_layers, self.output_conv):
            if not layer.built:  # a layer called on its own before the model keeps its weights
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True
        self(keras.KerasTensor((None, None, None, self.input_channels)))

    def build_from_config(self, config: dict[str, Any]) -> None:
        """Build with the input shape stated, also for files saved with an empty build config,
        so that Keras knows the export signature (N, H, W, 2) of a loaded generator."""
        self.build(tuple(config.get("input_shape") or (None, None, None, self.input_channels)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({key: list(value) if isinstance(value, tuple) else value for key, value in vars(self.settings).items()})
        return config


@keras.saving.register_keras_serializable(package="tf_twogan")
class Discriminator(keras.Model):
    """Discriminator: 3x3 stride-2 valid convs (+ BatchNorm + LeakyReLU), flatten, one linear unit.

    Args:
        widths: channels of the conv layers (32, 64, 128, 256).
        batch_norm_from: first conv layer index with BatchNorm (0: all, the paper;
            1: FusionGAN).
        spectral_norm: wrap every conv and the linear unit in spectral normalisation.
        leaky_slope: LeakyReLU slope.
        input_size: side of the square input patches (128; 120 for FusionGAN);
            fixes the size of the linear unit.
        synchronized_batch_norm: as for :class:`Generator`; not saved.

    Input (N, S, S, 1) in [-1, 1]; output (N, 1) raw scores (no sigmoid: the losses
    are least squares against soft labels).

    Reference: Chen, Han & Tian 2021, Fig. 5.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        batch_norm_from: int = 0,
        spectral_norm: bool = False,
        leaky_slope: float = 0.2,
        input_size: int = 128,
        synchronized_batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        self.settings = DiscriminatorConfig(tuple(widths), batch_norm_from, spectral_norm, leaky_slope)
        self.input_size = int(input_size)
        self.hidden_layers = []
        for index, width in enumerate(self.settings.widths):
            self.hidden_layers.append(_conv(width, 3, 2, True, spectral_norm, f"conv{index + 1}"))
            if index >= batch_norm_from:
                self.hidden_layers.append(_batch_norm(f"bn{index + 1}", self.synchronized_batch_norm))
            self.hidden_layers.append(layers.LeakyReLU(negative_slope=leaky_slope, name=f"lrelu{index + 1}"))
        self.flatten = layers.Flatten(name="flatten")
        dense = layers.Dense(1, name="linear", dtype="float32")
        self.linear = WeightSpectralNorm(dense, name="linear_sn", dtype="float32") if spectral_norm else dense

    @classmethod
    def from_settings(cls, settings: DiscriminatorConfig, input_size: int = 128, **kwargs: Any) -> "Discriminator":
        return cls(**vars(settings), input_size=input_size, **kwargs)

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = images
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        return self.linear(self.flatten(x), training=training)

    def build(self, input_shape: Any = None) -> None:
        """Build every layer from shapes, then call the model once on a symbolic input (as :meth:`Generator.build`)."""
        shape = (None, self.input_size, self.input_size, 1)
        for layer in (*self.hidden_layers, self.flatten, self.linear):
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True
        self(keras.KerasTensor((None, self.input_size, self.input_size, 1)))

    def build_from_config(self, config: dict[str, Any]) -> None:
        """Build with the input shape stated (as :meth:`Generator.build_from_config`), so a loaded one exports."""
        self.build(tuple(config.get("input_shape") or (None, self.input_size, self.input_size, 1)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({key: list(value) if isinstance(value, tuple) else value for key, value in vars(self.settings).items()})
        config["input_size"] = self.input_size
        return config


def generate(generator: Generator, primary: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Run a generator on one whole image pair on the 0..255 scale; float32 (H, W) on 0..255.

    BatchNorm uses its moving statistics (inference mode).
    """
    pair = np.stack([primary, other], axis=-1).astype(np.float32)[None]
    output = generator((pair - 127.5) / 127.5, training=False)
    return np.asarray(output, dtype=np.float32)[0, ..., 0] * 127.5 + 127.5
