"""Loss functions of docs/DESIGN.md section 3 (the paper's equations, reconstructed).

Notation: N batch size, S = H * W pixels, ||.||_F the Frobenius norm, grad the
Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]] with zero 'same' padding (FusionGAN's
gradient operator).  Images are float tensors (N, H, W, 1); scores are (N, 1).
Written with ``keras.ops`` (on the TensorFlow backend the same kernels as ``tf.*``), except
the Laplacian's convolution (see :func:`laplacian`).
"""
from __future__ import annotations

import functools
from typing import Sequence

import tensorflow as tf
from keras import ops

LAPLACIAN_KERNEL = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def laplacian(images: tf.Tensor) -> tf.Tensor:
    """The gradient operator grad: a 3x3 Laplacian with zero 'same' padding."""
    kernel = tf.constant(LAPLACIAN_KERNEL, dtype=images.dtype)[:, :, None, None]
    # tf.nn.conv2d on purpose: keras.ops.conv (tf.nn.convolution) moves mixed_bfloat16 training by an ulp
    return tf.nn.conv2d(images, kernel, strides=1, padding="SAME")


def intensity_term(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """(1/N) sum_n (1/S) ||I_n - T_n||_F^2, the mean squared intensity difference."""
    return ops.mean(ops.square(image - target))


def max_intensity(targets: Sequence[tf.Tensor]) -> tf.Tensor:
    """The per-pixel maximum of the targets (the one target itself when there is one)."""
    return functools.reduce(ops.maximum, targets)


def max_gradient(targets: Sequence[tf.Tensor]) -> tf.Tensor:
    """Per pixel the Laplacian of larger magnitude among the targets (ties: the first).

    The "choose max" rule of multi-scale fusion applied to the gradient target, so a
    fused image is asked to keep the stronger detail of either source.
    """
    fields = [laplacian(target) for target in targets]
    return functools.reduce(lambda a, b: ops.where(ops.abs(b) > ops.abs(a), b, a), fields)


def content_terms(image: tf.Tensor, intensity_targets: Sequence[tf.Tensor],
                  gradient_targets: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """The intensity and gradient terms of the content loss against combined targets.

    The gradient term is (1/N) sum_n (1/S) ||grad I_n - G_n||_F^2 with G the target's
    Laplacian.  One target each is the paper's case; several are combined by
    :func:`max_intensity` and :func:`max_gradient`.  The content loss is
    ``intensity + xi * gradient`` (:mod:`tf_twogan.gan`).
    """
    intensity = intensity_term(image, max_intensity(intensity_targets))
    gradient = ops.mean(ops.square(laplacian(image) - max_gradient(gradient_targets)))
    return intensity, gradient


def generator_adversarial_loss(fake_scores: tf.Tensor, target: tf.Tensor | float = 0.8) -> tf.Tensor:
    """(1/N) sum (D(I) - l1)^2: the generator wants its images scored as l1."""
    return ops.mean(ops.square(fake_scores - target))


def discriminator_loss(
    real_scores: tf.Tensor, fake_scores: tf.Tensor, real_label: tf.Tensor | float = 0.8, fake_label: tf.Tensor | float = 0.2
) -> tuple[tf.Tensor, tf.Tensor]:
    """The two terms of loss_D: (1/N) sum (D(I_gt) - alpha)^2 and (1/N) sum (D(I_f) - beta)^2.

    Returned separately so both can be tracked; loss_D is their sum.
    """
    return ops.mean(ops.square(real_scores - real_label)), ops.mean(ops.square(fake_scores - fake_label))
