"""Losses of docs/DESIGN.md section 3 against values computed by hand."""
import numpy as np
import tensorflow as tf

from tf_twogan import losses


def image(rows):
    return tf.constant(np.array(rows, dtype=np.float32)[None, :, :, None])


def test_laplacian_with_zero_same_padding_by_hand():
    x = image([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # centre: 2 + 4 + 6 + 8 - 4*5 = 0; corner (0,0): 2 + 4 - 4*1 = 2; edge (0,1): 1 + 3 + 5 - 8 = 1;
    # edge (1,0): 1 + 7 + 5 - 16 = -3; corner (2,0): 4 + 8 - 28 = -16; corner (2,2): 6 + 8 - 36 = -22
    expected = [[2, 1, -4], [-3, 0, -7], [-16, -11, -22]]
    np.testing.assert_array_equal(losses.laplacian(x)[0, ..., 0], expected)


def gradient_term(fused, target):
    """The gradient term of the content loss against one target (the paper's case)."""
    return losses.content_terms(fused, [target], [target])[1]


def test_content_terms_are_mean_squared_intensity_and_laplacian_differences():
    fused = image([[0, 0], [0, 1]])
    ir = image([[0, 0], [0, 0]])
    vis = image([[0, 0], [0, 0]])
    # intensity: (1/4) * 1 = 0.25.  laplacian(fused) = [[0, 1], [1, -4]]: (1 + 1 + 16) / 4 = 4.5
    intensity, gradient = losses.content_terms(fused, [ir], [vis])
    assert np.isclose(float(intensity), 0.25) and np.isclose(float(losses.intensity_term(fused, ir)), 0.25)
    assert np.isclose(float(gradient), 4.5)


def test_zero_padding_makes_a_constant_offset_of_the_gradient_target_count_only_at_the_border():
    fused = image([[0, 0], [0, 1]])
    offset = image([[10, 10], [10, 10]])
    # laplacian(fused) = [[0, 1], [1, -4]]; with zero padding every pixel of the 2x2 constant 10 has two
    # neighbours inside: laplacian = 2 * 10 - 4 * 10 = -20.  Squared differences 20^2 + 21^2 + 21^2 + 16^2 = 1538
    assert np.isclose(float(gradient_term(fused, offset)), 1538 / 4)  # 384.5, not the 4.5 of a zero target
    # away from the border the Laplacian ignores the offset: the term compares gradients there
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, 6, 7, 1)), dtype=tf.float32)
    inner = (slice(None), slice(1, -1), slice(1, -1), slice(None))
    np.testing.assert_allclose(losses.laplacian(x + 10.0).numpy()[inner], losses.laplacian(x).numpy()[inner], atol=1e-5)


def test_content_terms_average_over_the_batch():
    a = tf.concat([image([[1.0]]), image([[3.0]])], axis=0)
    zero = tf.zeros_like(a)
    # per-sample intensity 1 and 9; gradient: laplacian of a single pixel is -4x -> 16 and 144
    intensity, gradient = losses.content_terms(a, [zero], [zero])
    assert np.isclose(float(intensity), (1 + 9) / 2) and np.isclose(float(gradient), (16 + 144) / 2)


def test_adversarial_and_discriminator_losses_by_hand():
    fake = tf.constant([[0.8], [0.2]])
    real = tf.constant([[1.0], [0.6]])
    # generator: ((0.8-0.8)^2 + (0.2-0.8)^2) / 2 = 0.18
    assert np.isclose(float(losses.generator_adversarial_loss(fake, 0.8)), 0.18)
    real_term, fake_term = losses.discriminator_loss(real, fake, 0.8, 0.2)
    assert np.isclose(float(real_term), (0.04 + 0.04) / 2)   # (1-0.8)^2, (0.6-0.8)^2
    assert np.isclose(float(fake_term), (0.36 + 0.0) / 2)    # (0.8-0.2)^2, (0.2-0.2)^2


def test_labels_may_be_per_sample_tensors():
    scores = tf.constant([[1.0], [0.0]])
    labels = tf.constant([[0.5], [0.5]])
    assert np.isclose(float(losses.generator_adversarial_loss(scores, labels)), 0.25)
