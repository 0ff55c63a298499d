"""The chain as one functional Keras model, and generators that Keras' own export accepts (issue 23, issue 21 item 10)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tf_twogan.chain import build_chain_model, chain_model
from tf_twogan.checkpoints import checkpoint_dir
from tf_twogan.inference import Fuser, load_chain
from tf_twogan.networks_io import load_network

SHIPPED = checkpoint_dir().parent
SHARP = SHIPPED / "sharp"


def numpy_generator(path: Path, images: np.ndarray) -> np.ndarray:
    """A generator's output computed in numpy from the raw arrays of its ``.keras`` file (the
    weights file's own layout: conv kernel and bias; BatchNorm gamma, beta, mean, variance)."""
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        hidden = weights["hidden_layers"]
        convs = [hidden[name]["vars"] for name in sorted((n for n in hidden if n.startswith("conv2d")), key=len)]
        norms = [hidden[name]["vars"] for name in sorted((n for n in hidden if n.startswith("batch_norm")), key=len)]
        output = next(iter(weights["layers"].values()))["vars"]
        params = [([c["0"][()], c["1"][()]], [b[str(i)][()] for i in range(4)]) for c, b in zip(convs, norms)]
        last = (output["0"][()], output["1"][()])
    margin = len(params)
    x = np.pad(images.astype(np.float64), [(0, 0), (margin, margin), (margin, margin), (0, 0)], mode="reflect")

    def conv(x, kernel, bias):
        k = kernel.shape[0]
        windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # N, H', W', C, k, k
        return np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias

    for (kernel, bias), (gamma, beta, mean, variance) in params:
        x = conv(x, kernel, bias)
        x = (x - mean) / np.sqrt(variance + 1e-5) * gamma + beta
        x = np.where(x > 0, x, 0.2 * x)
    return np.tanh(conv(x, *last))


@pytest.mark.parametrize("name", ["sharp", "lite"])
def test_shipped_generators_load_safely_and_compute_their_stored_weights(name):
    images = np.random.default_rng(1).uniform(-1, 1, (1, 11, 14, 2)).astype(np.float32)
    for number in (1, 2, 3):
        path = SHIPPED / name / f"g{number}.keras"
        generator = load_network(path)  # safe_mode=True
        np.testing.assert_allclose(np.asarray(generator(images)), numpy_generator(path, images), atol=2e-5)


def test_loaded_generator_exports_with_keras_own_export(tmp_path):
    generator = load_network(SHARP / "g1.keras")  # never called before export
    generator.export(str(tmp_path / "g1"), format="tf_saved_model", verbose=False)
    images = np.random.default_rng(2).uniform(-1, 1, (2, 9, 12, 2)).astype(np.float32)
    loaded = tf.saved_model.load(str(tmp_path / "g1"))
    np.testing.assert_array_equal(np.asarray(loaded.serve(images)), np.asarray(generator(images)))


def test_chain_model_equals_the_tiled_fuser():
    ir, vis = np.random.default_rng(3).uniform(0, 255, (2, 1, 23, 31, 1)).astype(np.float32)
    fused = np.asarray(chain_model(SHARP)([ir, vis]))
    assert fused.shape == (1, 23, 31, 1)
    expected = Fuser(SHARP, tile=8).fuse_luma(ir[0, ..., 0], vis[0, ..., 0])
    np.testing.assert_allclose(fused[0, ..., 0], expected, atol=2e-3)


def test_chain_model_feeds_the_swapped_second_layer():
    g1, g2, g3, _ = load_chain(SHARP)
    ir, vis = np.random.default_rng(4).uniform(0, 255, (2, 1, 12, 12, 1)).astype(np.float32)
    swapped = np.asarray(build_chain_model(g1, g2, g3, swap_second_layer=True)([ir, vis]))
    expected = Fuser(generators=(g1, g2, g3, True), tile=0).fuse_luma(ir[0, ..., 0], vis[0, ..., 0])
    np.testing.assert_allclose(swapped[0, ..., 0], expected, atol=2e-3)
