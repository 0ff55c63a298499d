"""Generator and discriminator: docs/DESIGN.md section 2 shapes, parameter counts, serialisation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_twogan.images import to_uint8
from tf_twogan.models import Discriminator, Generator, generate


def trainable_parameters(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_default_generator_has_the_issues_parameter_count():
    # 3x3 convs 2->256->128->64->32 with biases, BN scale+offset, 1x1 conv 32->1.
    g = Generator()
    g.build()
    assert trainable_parameters(g) == 393_153
    g = Generator(conv_bias=False)
    g.build()
    assert trainable_parameters(g) == 392_673


def test_generator_keeps_any_input_size():
    g = Generator(widths=(8, 8, 4, 4))
    assert g(tf.zeros((2, 101, 137, 2))).shape == (2, 101, 137, 1)


def test_generator_without_padding_shrinks_by_its_margin():
    g = Generator(widths=(8, 8, 4, 4), kernel_sizes=(5, 5, 3, 3), pad_mode="none")
    assert g.margin == 6
    assert g(tf.zeros((1, 132, 132, 2))).shape == (1, 120, 120, 1)


def test_padding_then_conv_stack_is_the_whole_generator():
    g = Generator(widths=(8, 8, 4, 4))
    x = tf.random.stateless_uniform((1, 30, 41, 2), seed=(1, 2), minval=-1, maxval=1)
    np.testing.assert_allclose(tf.tanh(g.conv_stack(g.pad(x))), g(x), atol=1e-6)


def test_discriminator_maps_a_128_patch_to_one_score_through_7x7x256():
    d = Discriminator()
    assert d(tf.zeros((3, 128, 128, 1))).shape == (3, 1)
    x = tf.zeros((1, 128, 128, 1))
    for layer in d.hidden_layers:
        x = layer(x)
    assert x.shape == (1, 7, 7, 256)


def test_single_input_mode_ignores_the_second_channel():
    g = Generator(widths=(8, 8, 4, 4), input_mode="single")
    x = tf.random.stateless_uniform((1, 20, 20, 2), seed=(3, 4), minval=-1, maxval=1)
    y = tf.concat([x[..., :1], -x[..., 1:]], axis=-1)
    np.testing.assert_array_equal(g(x), g(y))


def test_flops_per_pixel_counts_multiply_adds_twice():
    g = Generator()
    assert g.flops_per_pixel() == 2 * (9 * 2 * 256 + 9 * 256 * 128 + 9 * 128 * 64 + 9 * 64 * 32 + 32)


def test_config_round_trip_rebuilds_the_same_architecture():
    g = Generator(widths=(8, 6, 4, 2), kernel_sizes=(5, 3, 3, 3), input_mode="single", conv_bias=False, leaky_slope=0.1)
    clone = Generator.from_config(g.get_config())
    assert clone.settings == g.settings
    d = Discriminator(widths=(4, 8, 8, 16), batch_norm_from=1, input_size=120)
    assert Discriminator.from_config(d.get_config()).get_config() == d.get_config()


def test_synchronized_batch_norm_is_chosen_by_argument_and_not_saved(tmp_path):
    # a training-time choice (several replicas): no ambient strategy decides it, and a
    # saved network loads with plain BatchNorm anywhere
    def synchronized(network):
        return [layer.synchronized for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]

    for network in (Generator(widths=(4, 4, 4, 4), synchronized_batch_norm=True),
                    Discriminator(widths=(4, 4, 8, 8), input_size=32, synchronized_batch_norm=True)):
        network.build()
        assert synchronized(network) == [True] * 4
        assert "synchronized_batch_norm" not in network.get_config()
        network.save(tmp_path / "network.keras")
        assert synchronized(keras.saving.load_model(tmp_path / "network.keras", safe_mode=True)) == [False] * 4
    assert synchronized(Generator(widths=(4, 4, 4, 4))) == [False] * 4


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_weights_round_trip_through_keras_files_with_safe_mode(tmp_path, spectral_norm):
    g = Generator(widths=(8, 8, 4, 4), spectral_norm=spectral_norm)
    g.build()
    for layer in g.layers:  # make BatchNorm's moving statistics matter
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(tf.fill(layer.moving_mean.shape, 0.3))
            layer.moving_variance.assign(tf.fill(layer.moving_variance.shape, 2.0))
    d = Discriminator(widths=(4, 8, 8, 16), spectral_norm=spectral_norm)
    d.build()
    g.save(tmp_path / "g.keras")
    d.save(tmp_path / "d.keras")
    g2 = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    d2 = keras.saving.load_model(tmp_path / "d.keras", safe_mode=True)
    x = tf.random.stateless_uniform((2, 33, 47, 2), seed=(5, 6), minval=-1, maxval=1)
    np.testing.assert_array_equal(g(x), g2(x))
    patch = tf.random.stateless_uniform((2, 128, 128, 1), seed=(7, 8), minval=-1, maxval=1)
    np.testing.assert_array_equal(d(patch), d2(patch))


def test_generate_works_on_the_0_255_scale():
    g = Generator(widths=(4, 4, 4, 4))
    ir = np.full((12, 15), 200.0)
    out = generate(g, ir, ir)
    assert out.shape == (12, 15) and out.dtype == np.float32
    expected = np.asarray(g(tf.constant(np.full((1, 12, 15, 2), (200 - 127.5) / 127.5, np.float32))))[0, ..., 0] * 127.5 + 127.5
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert to_uint8(np.array([-3.0, 0.49, 0.5, 254.5, 300.0])).tolist() == [0, 0, 1, 255, 255]


def test_weight_spectral_norm_follows_fusiongans_graph():
    # FusionGAN utils.weights_spectral_norm: v = l2(u W^T), u' = l2(v W), sigma = v W u'^T, W / sigma;
    # the raw kernel is the variable, and gradients flow through sigma.
    from tf_twogan.models import WeightSpectralNorm

    layer = WeightSpectralNorm(keras.layers.Conv2D(4, 3, padding="valid", kernel_initializer=keras.initializers.TruncatedNormal(stddev=1e-3)))
    x = tf.random.stateless_normal((2, 9, 9, 3), seed=(1, 1))
    layer.build(x.shape)
    u0, raw = layer.u.numpy().copy(), tf.Variable(layer.layer.kernel.numpy())

    def reference(kernel):
        matrix = tf.reshape(kernel, (-1, 4))
        l2 = lambda t: t / (tf.reduce_sum(t ** 2) ** 0.5 + 1e-12)  # noqa: E731
        v = l2(tf.matmul(u0, tf.transpose(matrix)))
        u = l2(tf.matmul(v, matrix))
        return kernel / tf.matmul(tf.matmul(v, matrix), tf.transpose(u)), u

    with tf.GradientTape() as tape:
        ours = tf.reduce_sum(layer(x, training=True) ** 2)
    ours_grad = tape.gradient(ours, layer.layer.kernel)
    with tf.GradientTape() as tape:
        normalized, u_next = reference(raw)
        theirs = tf.reduce_sum((tf.nn.conv2d(x, normalized, 1, "VALID") + layer.layer.bias) ** 2)
    theirs_grad = tape.gradient(theirs, raw)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-4, atol=1e-6 * float(tf.reduce_max(tf.abs(theirs_grad))))
    np.testing.assert_allclose(layer.u.numpy(), u_next.numpy(), atol=1e-6)       # u updated in training calls
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), raw.numpy())        # the kernel stays raw


def test_fused_batch_norm_equals_keras_batch_norm():
    # Outputs, input/scale/offset gradients and moving statistics of Keras' own layer, in training.
    from tf_twogan.models import BatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((4, 9, 7, 5), dtype=np.float32) * 3 + 1)
    upstream = tf.constant(rng.standard_normal(x.shape, dtype=np.float32))
    gamma = rng.standard_normal(5).astype(np.float32)
    results = []
    for layer in (keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5), BatchNormalization(momentum=0.9, epsilon=1e-5)):
        layer.build(x.shape)
        layer.gamma.assign(gamma)
        layer.moving_variance.assign(np.full(5, 2.0, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        results.append([layer(x, training=False), *tape.gradient(loss, [x, layer.gamma, layer.beta]),
                        layer.moving_mean, layer.moving_variance])
    for keras_value, fused_value in zip(*results):
        np.testing.assert_allclose(np.asarray(fused_value), np.asarray(keras_value), rtol=1e-5, atol=2e-5)


def test_batch_norm_at_inference_is_the_textbook_formula_on_the_moving_statistics():
    # (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta, its gradients by hand, statistics unchanged
    from tf_twogan.models import BatchNormalization

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5, 4)).astype(np.float32) * 2 - 1
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.normal(0, 0.3, 4).astype(np.float32)
    mean, variance = rng.normal(0, 0.5, 4).astype(np.float32), rng.uniform(0.2, 3, 4).astype(np.float32)
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5)
    layer.build(x.shape)
    for variable, value in ((layer.gamma, gamma), (layer.beta, beta), (layer.moving_mean, mean), (layer.moving_variance, variance)):
        variable.assign(value)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=False)
        loss = tf.reduce_sum(outputs * upstream)
    grad_x, grad_gamma, grad_beta = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    x64, scale = x.astype(np.float64), 1 / np.sqrt(variance.astype(np.float64) + 1e-5)
    normalized = (x64 - mean) * scale
    np.testing.assert_allclose(outputs.numpy(), normalized * gamma + beta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_x.numpy(), upstream * gamma * scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_gamma.numpy(), (upstream * normalized).sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_beta.numpy(), upstream.sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), variance)
