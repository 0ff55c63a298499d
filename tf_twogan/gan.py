"""One generator/discriminator pair as a Keras model with a custom ``train_step``.

Follows the keras-io GAN examples: the pair receives its two networks and
hyper-parameters in ``__init__``, ``compile()`` takes one optimizer per network,
``Mean`` trackers are exposed through ``metrics`` so Keras resets them each epoch, and
randomness (soft labels) comes from a seeded ``keras.random.SeedGenerator``.

Under a ``tf.distribute`` strategy each replica runs ``train_step`` on its share of
the global batch; Keras sums the replicas' gradients, so the losses are divided by
the number of replicas before differentiation (the gradient is then that of the
global-batch mean), while the trackers record the unscaled per-replica means, which
Keras averages over the replicas.

A batch is one tensor (N, P, P, K) of patches on 0..255, the K kinds of
:attr:`PairRoles.kinds` (``ir``, ``vis``, ``irv``, ``vir``) stacked on the last axis
in that order, as :class:`tf_twogan.data.PatchStream` yields them for the pair's
kinds; :class:`PairRoles` says which kinds feed the generator, the content targets
and the discriminator's real side.  When the generator shrinks its input
(FusionGAN's valid convolutions), the targets are centre-cropped to the generator's
output size.

TensorFlow ops remain where Keras has no public equivalent: the gradient tapes
(two optimizers, two updates per step) and ``tf.distribute`` (the replica count).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from . import losses
from .config import LabelRange, LossConfig
from .models import Discriminator, Generator


@dataclass(frozen=True)
class PairRoles:
    """Which patch kinds play which part in one GAN (docs/DESIGN.md section 3 table).

    ``intensity_target`` and ``gradient_target`` name one kind each in the paper;
    several kinds are combined per pixel (:func:`tf_twogan.losses.content_terms`).
    ``layer`` is 1 for the first-layer GANs (and FusionGAN), 2 for GAN 3: it picks
    the content weight (lambda or zeta).
    """

    name: str
    inputs: tuple[str, str]
    intensity_target: tuple[str, ...]
    gradient_target: tuple[str, ...]
    real: str
    layer: int = 1

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every patch kind the GAN reads, once each: the channels of its batches, in this order."""
        return tuple(dict.fromkeys((*self.inputs, *self.intensity_target, *self.gradient_target, self.real)))


GAN1 = PairRoles("gan1", ("ir", "vis"), intensity_target=("ir",), gradient_target=("vis",), real="vis")
GAN2 = PairRoles("gan2", ("vis", "ir"), intensity_target=("vis",), gradient_target=("ir",), real="ir")
GAN3 = PairRoles("gan3", ("irv", "vir"), intensity_target=("irv",), gradient_target=("vir",), real="vir", layer=2)
GAN3_SWAPPED = PairRoles("gan3", ("vir", "irv"), intensity_target=("vir",), gradient_target=("irv",), real="irv", layer=2)
FUSIONGAN = PairRoles("fusiongan", ("ir", "vis"), intensity_target=("ir",), gradient_target=("vis",), real="vis")

# what each SecondLayerConfig target name means in patch kinds ("paper": the roles' own)
SECOND_LAYER_TARGET_KINDS = {"irv": ("irv",), "vir": ("vir",), "max_first_layer": ("irv", "vir"), "max_sources": ("ir", "vis")}


def second_layer_roles(swap: bool, intensity_target: str = "paper", gradient_target: str = "paper") -> PairRoles:
    """GAN 3's roles: the paper's (or swapped) inputs and real image, with the named content targets."""
    base = GAN3_SWAPPED if swap else GAN3
    intensity = base.intensity_target if intensity_target == "paper" else SECOND_LAYER_TARGET_KINDS[intensity_target]
    gradient = base.gradient_target if gradient_target == "paper" else SECOND_LAYER_TARGET_KINDS[gradient_target]
    return dataclasses.replace(base, intensity_target=intensity, gradient_target=gradient)


def to_unit_range(patches: tf.Tensor) -> tf.Tensor:
    """0..255 (uint8 or float) -> float32 [-1, 1] as (x - 127.5) / 127.5 (docs/DESIGN.md section 2)."""
    return (ops.cast(patches, "float32") - 127.5) / 127.5


def center_crop(images: tf.Tensor, size: tuple[int | tf.Tensor, int | tf.Tensor]) -> tf.Tensor:
    """Centre crop (N, H, W, C) images to (N, size[0], size[1], C)."""
    top, left = (ops.shape(images)[1] - size[0]) // 2, (ops.shape(images)[2] - size[1]) // 2
    return images[:, top:top + size[0], left:left + size[1], :]


class AdversarialPair(keras.Model):
    """A generator and its discriminator trained by least squares against soft labels.

    Per batch: ``discriminator_steps`` updates of D (two in the paper and
    FusionGAN), then one update of G.  G runs forward once per batch: it does not
    change during the D updates, so that one pass feeds them and G's own update
    (its BatchNorm moving statistics are updated once per batch).

    Args:
        generator: a :class:`~tf_twogan.models.Generator`.
        discriminator: a :class:`~tf_twogan.models.Discriminator`.
        roles: the :class:`PairRoles` of this GAN.
        content_weight: lambda (2) for the first layer, zeta (100) for the second.
        loss: the :class:`~tf_twogan.config.LossConfig` (labels l1, alpha, beta; xi).
        discriminator_steps: D updates per G update.
        seed: seed of the soft-label generator.

    Example:
        >>> pair = AdversarialPair(Generator(), Discriminator(), GAN1, content_weight=2.0)
        >>> pair.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
        >>> pair.fit(PatchStream("store.h5", GAN1.kinds, 32).dataset(), epochs=10, steps_per_epoch=1150)

    The pair itself is not saved: its generator and discriminator are (``g1.keras``,
    ``d1.keras``, ...), and BackupAndRestore keeps the whole training state.

    Reference: Chen, Han & Tian 2021, section 3.3; Ma et al. 2019 (FusionGAN).
    """

    def __init__(self, generator: Generator, discriminator: Discriminator, roles: PairRoles, content_weight: float,
                 loss: LossConfig | None = None, discriminator_steps: int = 2, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", roles.name), **kwargs)
        self.generator, self.discriminator, self.roles = generator, discriminator, roles
        self.content_weight = float(content_weight)
        self.loss_config = loss or LossConfig()
        self.discriminator_steps = int(discriminator_steps)
        self.seed_generator = keras.random.SeedGenerator(seed)
        names = ("d_loss", "d_real", "d_fake", "g_loss", "g_adversarial", "g_content", "g_intensity", "g_gradient")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def compile(self, generator_optimizer: keras.optimizers.Optimizer, discriminator_optimizer: keras.optimizers.Optimizer, **kwargs: Any) -> None:
        """One optimizer per network, both built here.

        The generator's optimizer is also the model's ``optimizer`` (its ``iterations``
        count batches for callbacks).  Building both now matters for resume:
        BackupAndRestore restores optimizer variables only into built optimizers,
        and Keras' default RMSprop would otherwise be saved and restored instead.
        """
        super().compile(optimizer=generator_optimizer, **kwargs)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        if not self.built:
            self.build()
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.generator(inputs, training=training)

    def build(self, input_shape: Any = None) -> None:
        # shapes stated, so that Keras records them and saved networks export (Generator.build)
        self.generator.build((None, None, None, self.generator.input_channels))
        self.discriminator.build((None, self.discriminator.input_size, self.discriminator.input_size, 1))
        self.built = True

    def _labels(self, label: LabelRange, batch: int | tf.Tensor) -> tf.Tensor | float:
        if label.low == label.high:
            return label.low
        return keras.random.uniform((batch, 1), label.low, label.high, seed=self.seed_generator)

    def unpack_batch(self, data: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor], tf.Tensor]:
        """A batch (N, P, P, K) as (generator input, intensity targets, gradient targets, real image) on [-1, 1].

        Channel k of ``data`` is the kind ``roles.kinds[k]`` (module docstring).  The
        targets (lists) and the real image are centre-cropped to the generator's
        output size.  Public because callbacks (the TensorBoard sample) feed it too.
        """
        batch = to_unit_range(data)
        scaled = {kind: batch[..., index:index + 1] for index, kind in enumerate(self.roles.kinds)}
        inputs = ops.concatenate([scaled[kind] for kind in self.roles.inputs], axis=-1)
        shrink = 0 if self.generator.settings.pad_mode == "reflect" else 2 * self.generator.margin
        out_size = (ops.shape(inputs)[1] - shrink, ops.shape(inputs)[2] - shrink)
        crop = {kind: center_crop(scaled[kind], out_size) for kind in
                (*self.roles.intensity_target, *self.roles.gradient_target, self.roles.real)}
        return (inputs, [crop[kind] for kind in self.roles.intensity_target],
                [crop[kind] for kind in self.roles.gradient_target], crop[self.roles.real])

    def _generator_losses(self, fused: tf.Tensor, fake_scores: tf.Tensor, intensity: list[tf.Tensor],
                          gradient: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        cfg = self.loss_config
        fused = ops.cast(fused, "float32")
        intensity_term, gradient_term = losses.content_terms(fused, intensity, gradient)
        content = intensity_term + cfg.gradient_weight * gradient_term
        adversarial = losses.generator_adversarial_loss(ops.cast(fake_scores, "float32"), self._labels(cfg.generator_target, ops.shape(fused)[0]))
        return {"g_loss": adversarial + self.content_weight * content, "g_adversarial": adversarial,
                "g_content": content, "g_intensity": intensity_term, "g_gradient": gradient_term}

    def _discriminator_losses(self, real_scores: tf.Tensor, fake_scores: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = ops.shape(real_scores)[0]
        real_term, fake_term = losses.discriminator_loss(
            ops.cast(real_scores, "float32"), ops.cast(fake_scores, "float32"),
            self._labels(self.loss_config.real_label, batch), self._labels(self.loss_config.fake_label, batch))
        return {"d_loss": real_term + fake_term, "d_real": real_term, "d_fake": fake_term}

    def _replica_share(self, loss: tf.Tensor) -> tf.Tensor:
        """``loss / num_replicas_in_sync``: the summed replica gradients are then the global batch's."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss if replicas == 1 else loss * (1.0 / replicas)

    def train_step(self, data: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs, intensity, gradient, real = self.unpack_batch(data)
        with tf.GradientTape() as generator_tape:
            # G does not change during the D updates, so its one forward pass serves
            # them (as a constant) and, with the updated D, its own update.
            fused = self.generator(inputs, training=True)
            with generator_tape.stop_recording():
                for _ in range(self.discriminator_steps):
                    d_terms = self._discriminator_update(real, ops.stop_gradient(fused))
            g_terms = self._generator_losses(fused, self.discriminator(fused, training=True), intensity, gradient)
            g_loss = self._replica_share(g_terms["g_loss"])
        g_vars = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(generator_tape.gradient(g_loss, g_vars), g_vars))
        return self._track({**d_terms, **g_terms})

    def _discriminator_update(self, real: tf.Tensor, fused: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            d_terms = self._discriminator_losses(self.discriminator(real, training=True), self.discriminator(fused, training=True))
            d_loss = self._replica_share(d_terms["d_loss"])
        d_vars = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        return d_terms

    def test_step(self, data: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs, intensity, gradient, real = self.unpack_batch(data)
        fused = self.generator(inputs, training=False)
        fake_scores = self.discriminator(fused, training=False)
        d_terms = self._discriminator_losses(self.discriminator(real, training=False), fake_scores)
        return self._track({**d_terms, **self._generator_losses(fused, fake_scores, intensity, gradient)})

    def _track(self, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for name, value in values.items():
            self.trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 averages a multi-worker step's outputs with reduce("MEAN", axis=0),
            # which needs a batch axis: one entry per replica, averaged to a scalar.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results
