"""FusionGAN: original TF1 checkpoints, the test script's output, and the baseline's training.

The checkpoint is written the way the original ``model.py`` writes one: variables
created by name in a ``tf.compat.v1`` graph (``fusion_model/layerK/wK``, ``bK``,
``BatchNorm/...``, ``weights_SN/u``; the discriminator's too) and saved by
``tf.compat.v1.train.Saver``.  The expected outputs come from an independent
re-implementation of the original graphs with ``tf.nn`` ops (``fused_batch_norm`` is
the kernel ``tf.contrib.layers.batch_norm`` ran) and of ``scipy.misc.bytescale``.
"""

import numpy as np
import pytest
import tensorflow as tf

from helpers import TNO, need_dataset, read_csv
from tf_twogan.cli import main
from tf_twogan.fusiongan import (CheckpointError, fuse_original, load_original_generator, original_output,
                                 read_original_generator, scipy_bytescale)
from tf_twogan.images import read_gray_uint8, read_image

# (name, kernel, c_in, c_out) of the original generator and discriminator (model.py).
GENERATOR_LAYERS = [(1, 5, 2, 256), (2, 5, 256, 128), (3, 3, 128, 64), (4, 3, 64, 32), (5, 1, 32, 1)]
DISCRIMINATOR_LAYERS = [(1, 1, 32), (2, 32, 64), (3, 64, 128), (4, 128, 256)]


def original_checkpoint_values(seed=0):
    """Trained-looking values for every variable the original Saver writes (generator and D)."""
    rng = np.random.default_rng(seed)
    values = {}
    for k, size, c_in, c_out in GENERATOR_LAYERS:
        scope = f"fusion_model/layer{k}"
        values[f"{scope}/w{k}"] = rng.normal(0, 0.3 if k == 5 else 0.05, (size, size, c_in, c_out))
        values[f"{scope}/b{k}"] = rng.normal(0, 0.1, (c_out,))
        values[f"{scope}/weights_SN/u"] = rng.normal(0, 1, (1, c_out))
        if k < 5:
            values[f"{scope}/BatchNorm/gamma"] = rng.uniform(0.5, 1.5, (c_out,))
            values[f"{scope}/BatchNorm/beta"] = rng.normal(0, 0.3, (c_out,))
            values[f"{scope}/BatchNorm/moving_mean"] = rng.normal(0, 0.2, (c_out,))
            values[f"{scope}/BatchNorm/moving_variance"] = rng.uniform(0.01, 0.05, (c_out,))
    for k, c_in, c_out in DISCRIMINATOR_LAYERS:
        scope = f"discriminator/layer_{k}"
        values[f"{scope}/w_{k}"] = rng.normal(0, 1e-3, (3, 3, c_in, c_out))
        values[f"{scope}/b_{k}"] = np.zeros(c_out)
        values[f"{scope}/weights_SN/u"] = rng.normal(0, 1, (1, c_out))
    values["discriminator/line_5/w_5"] = rng.normal(0, 1e-3, (6 * 6 * 256, 1))
    values["discriminator/line_5/b_5"] = np.zeros(1)
    values["discriminator/line_5/weights_SN/u"] = rng.normal(0, 1, (1, 1))
    return {name: value.astype(np.float32) for name, value in values.items()}


def write_original_checkpoint(folder, values):
    """tf.compat.v1 graph + Saver, as the original CGAN.save (CGAN_120/CGAN.model-<epoch>)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        for name, value in values.items():
            scope, _, leaf = name.rpartition("/")
            with tf.compat.v1.variable_scope(scope):
                tf.compat.v1.get_variable(leaf, initializer=tf.constant(value), trainable="weights_SN" not in name)
        saver = tf.compat.v1.train.Saver(max_to_keep=50)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(folder / "CGAN.model"), global_step=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    values = original_checkpoint_values()
    return write_original_checkpoint(tmp_path_factory.mktemp("fusiongan") / "CGAN_120", values), values


@pytest.fixture(scope="module")
def pair():
    """A 40x52 crop of a real TNO test pair (gray BMPs)."""
    ir, vis = (read_gray_uint8(need_dataset("tno") / kind / "1.bmp")[300:340, 400:452] for kind in ("ir", "vis"))
    return ir, vis


def reference_sigma(kernel, u):
    """utils.weights_spectral_norm, one power iteration, with tf ops."""
    w = tf.reshape(kernel, [-1, kernel.shape[-1]])
    l2 = lambda x: x / (tf.reduce_sum(x ** 2) ** 0.5 + 1e-12)  # noqa: E731
    v_hat = l2(tf.matmul(u, tf.transpose(w)))
    u_hat = l2(tf.matmul(v_hat, w))
    return tf.matmul(tf.matmul(v_hat, w), tf.transpose(u_hat))


def reference_original_graph(values, ir, vis, corrected):
    """test_one_image.py's graph (corrected=False) or model.py's generator at inference (True), then *127.5+127.5."""
    pad = lambda image: np.pad((image.astype(np.float64) - 127.5) / 127.5, ((6, 6), (6, 6)), "edge")  # noqa: E731
    x = tf.constant(np.stack([pad(ir), pad(vis)], -1)[None], tf.float32)
    for k, *_ in GENERATOR_LAYERS:
        scope = f"fusion_model/layer{k}"
        weights = tf.constant(values[f"{scope}/w{k}"])
        if corrected:
            weights = weights / reference_sigma(weights, tf.constant(values[f"{scope}/weights_SN/u"]))
        x = tf.nn.conv2d(x, weights, strides=[1, 1, 1, 1], padding="VALID") + values[f"{scope}/b{k}"]
        if k == 5:
            x = tf.nn.tanh(x)
        elif corrected:
            x, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, values[f"{scope}/BatchNorm/gamma"], values[f"{scope}/BatchNorm/beta"], values[f"{scope}/BatchNorm/moving_mean"],
                values[f"{scope}/BatchNorm/moving_variance"], epsilon=1e-5, is_training=False)
            x = tf.maximum(x, 0.2 * x)
        else:  # fresh BatchNorm variables (scale 1, offset 0), is_training=True: batch statistics
            c = x.shape[-1]
            x, _, _ = tf.compat.v1.nn.fused_batch_norm(x, tf.ones([c]), tf.zeros([c]), epsilon=1e-5, is_training=True)
            x = tf.maximum(x, 0.2 * x)
    return (x.numpy() * 127.5 + 127.5).squeeze()


def scipy_misc_bytescale(data):
    """scipy.misc.bytescale(data) with cmin/cmax None, high 255, low 0 (scipy <= 1.1 pilutil.py)."""
    cmin, cmax = data.min(), data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(255 - 0) / cscale
    bytedata = (data - cmin) * scale + 0
    return (bytedata.clip(0, 255) + 0.5).astype(np.uint8)


def test_the_reader_finds_every_original_generator_variable_and_ignores_the_discriminator(checkpoint):
    prefix, values = checkpoint
    variables = read_original_generator(prefix)
    assert len(variables) == 5 * 3 + 4 * 4
    assert not any(name.startswith("discriminator") for name in variables)
    for name, value in variables.items():
        np.testing.assert_array_equal(value, values[name])
    # the folder resolves through the Saver's `checkpoint` state file
    assert read_original_generator(prefix.rsplit("/", 1)[0]).keys() == variables.keys()


def test_a_checkpoint_without_the_original_layout_is_refused_with_its_name(tmp_path):
    values = {name: value for name, value in original_checkpoint_values().items() if "layer3/BatchNorm" not in name}
    prefix = write_original_checkpoint(tmp_path, values)
    with pytest.raises(CheckpointError, match="fusion_model/layer3/BatchNorm/gamma"):
        read_original_generator(prefix)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_original_generator(tmp_path / "nothing")


def test_compat_mode_equals_the_original_test_script_on_a_real_pair(checkpoint, pair):
    prefix, values = checkpoint
    ir, vis = pair
    expected_float = reference_original_graph(values, ir, vis, corrected=False)
    generator = load_original_generator(prefix, "compat")
    ours_float = original_output(generator, ir, vis, "compat")
    assert ours_float.shape == ir.shape
    np.testing.assert_allclose(ours_float, expected_float, atol=2e-3)  # 0..255 scale
    expected = scipy_misc_bytescale(expected_float.astype(np.float32))
    ours = fuse_original(ir, vis, generator, "compat")
    assert ours.dtype == np.uint8 and ours.shape == ir.shape
    assert ours.min() == 0 and ours.max() == 255  # the min-max stretch
    assert np.abs(ours.astype(int) - expected).max() <= 1 and np.mean(ours == expected) > 0.99
    # the byte conversion alone is exactly scipy's
    np.testing.assert_array_equal(scipy_bytescale(expected_float.astype(np.float32)), expected)


def test_compat_batch_statistics_depend_on_the_whole_image(checkpoint, pair):
    """BatchNorm in training mode normalises with this image's statistics: a crop is not a crop of the output."""
    prefix, _ = checkpoint
    ir, vis = pair
    generator = load_original_generator(prefix, "compat")
    whole = original_output(generator, ir, vis, "compat")
    part = original_output(generator, ir[:, :26], vis[:, :26], "compat")
    assert np.abs(whole[:14, :14] - part[:14, :14]).max() > 0.5


def test_corrected_mode_uses_spectral_norm_and_restored_batch_norm_and_no_stretch(checkpoint, pair):
    prefix, values = checkpoint
    ir, vis = pair
    expected_float = reference_original_graph(values, ir, vis, corrected=True)
    generator = load_original_generator(prefix, "corrected")
    np.testing.assert_allclose(original_output(generator, ir, vis, "corrected"), expected_float, atol=2e-3)
    ours = fuse_original(ir, vis, prefix, "corrected")
    expected = np.clip(np.floor(expected_float + 0.5), 0, 255).astype(np.uint8)
    assert np.abs(ours.astype(int) - expected).max() <= 1 and np.mean(ours == expected) > 0.99
    # and it is not the compat output: documented differences change the image
    compat = fuse_original(ir, vis, prefix, "compat")
    assert np.mean(np.abs(compat.astype(int) - ours)) > 5
    # corrected inference is local: the left part of a pair is the left part of its output
    part = fuse_original(ir[:, :30], vis[:, :30], generator, "corrected")
    assert np.abs(part[:, :20].astype(int) - ours[:, :20]).max() <= 1


def test_cli_fuse_with_an_original_checkpoint_writes_the_compat_image(checkpoint, pair, tmp_path):
    prefix, values = checkpoint
    ir, vis = pair
    from tf_twogan.images import write_image

    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis)
    out = tmp_path / "fused" / "F9_00.png"
    assert main(["fuse", "--fusiongan-checkpoint", prefix, "--ir", str(tmp_path / "ir.png"),
                 "--vis", str(tmp_path / "vis.png"), "--out", str(out)]) == 0
    written = read_image(out)
    expected = scipy_misc_bytescale(reference_original_graph(values, ir, vis, corrected=False).astype(np.float32))
    assert written.shape == ir.shape and np.abs(written.astype(int) - expected).max() <= 1
    corrected = tmp_path / "corrected.png"
    assert main(["fuse", "--fusiongan-checkpoint", prefix, "--fusiongan-corrected", "--ir", str(tmp_path / "ir.png"),
                 "--vis", str(tmp_path / "vis.png"), "--out", str(corrected)]) == 0
    np.testing.assert_array_equal(read_image(corrected), fuse_original(ir, vis, prefix, "corrected"))
    assert main(["fuse", "--fusiongan-checkpoint", str(tmp_path / "missing"), "--ir", str(tmp_path / "ir.png"),
                 "--vis", str(tmp_path / "vis.png"), "--out", str(corrected)]) == 2
    # folders paired by name, like the original script's loop over Test_ir / Test_vi
    write_image(tmp_path / "Test_ir" / "7.png", ir)
    write_image(tmp_path / "Test_vi" / "7.png", vis)
    assert main(["fuse", "--fusiongan-checkpoint", prefix.rsplit("/", 1)[0], "--ir", str(tmp_path / "Test_ir"),
                 "--vis", str(tmp_path / "Test_vi"), "--out", str(tmp_path / "result"), "--quiet"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "result" / "7.png"), written)


def write_pair_folders(root, pairs):
    """``root/ir/<name>.png`` and ``root/vis/<name>.png`` for each ``name: (ir, vis)``."""
    from tf_twogan.images import write_image

    for name, (ir, vis) in pairs.items():
        write_image(root / "ir" / f"{name}.png", ir)
        write_image(root / "vis" / f"{name}.png", vis)
    return root / "ir", root / "vis"


def test_fusiongan_folder_fusion_checks_every_pair_before_writing_any(checkpoint, pair, tmp_path):
    from tf_twogan.fusiongan import FusionGanFuser
    from tf_twogan.images import ImageError

    ir, vis = pair
    ir_dir, vis_dir = write_pair_folders(tmp_path, {"1": (ir, vis), "2": (ir, vis), "3": (ir, vis[:, :40])})
    fuser = FusionGanFuser.from_original(checkpoint[0], "compat")
    with pytest.raises(ImageError, match=r"3\.png and .*3\.png differ in size"):
        fuser.fuse_folders(ir_dir, vis_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # pairs 1 and 2 were not written


def test_fusiongan_folder_fusion_keeps_complete_outputs_on_a_rerun(checkpoint, pair, tmp_path):
    from tf_twogan.fusiongan import FusionGanFuser, read_gray
    from tf_twogan.images import write_image

    ir, vis = pair
    ir_dir, vis_dir = write_pair_folders(tmp_path, {"a": (ir, vis), "b": (vis, ir)})
    out = tmp_path / "out"
    fuser = FusionGanFuser.from_original(checkpoint[0], "compat")
    first = fuser.fuse_folders(ir_dir, vis_dir, out)
    assert [path.name for path in first] == ["a.png", "b.png"] and first.skipped == []
    for name in ("a", "b"):  # what the original script writes for each pair
        expected = fuse_original(read_gray(ir_dir / f"{name}.png"), read_gray(vis_dir / f"{name}.png"), checkpoint[0], "compat")
        np.testing.assert_array_equal(read_image(out / f"{name}.png"), expected)
    marker = np.full(ir.shape, 7, np.uint8)
    write_image(out / "a.png", marker)  # stands for an output complete from an earlier run
    (out / "b.png").unlink()  # the interrupted run never got to b
    again = fuser.fuse_folders(ir_dir, vis_dir, out)
    assert again == first and again.skipped == [out / "a.png"]
    np.testing.assert_array_equal(read_image(out / "a.png"), marker)
    np.testing.assert_array_equal(read_image(out / "b.png"), fuse_original(vis, ir, checkpoint[0], "compat"))


@pytest.mark.needs_data("tno")
def test_a_short_real_fusiongan_training_through_the_cli(mini_split, tmp_path):
    """twogan prepare --method fusiongan + twogan train --method fusiongan on two TNO pairs."""
    import keras

    from tf_twogan.config import preset
    from tf_twogan.gan import FUSIONGAN
    from tf_twogan.store import PatchStore
    from tf_twogan.training import build_pair, configure_runtime, load_network

    store = tmp_path / "fusiongan.h5"
    assert main(["prepare", "--ir", str(TNO / "ir"), "--vis", str(TNO / "vis"), "--out", str(store), "--split", str(mini_split),
                 "--subset", "train", "--method", "fusiongan", "--stride", "100", "--quiet"]) == 0
    with PatchStore(store) as opened:
        assert opened.patch_size == 132 and len(opened) > 4
    out = tmp_path / "run"
    assert main(["train", "--method", "fusiongan", "--preset", "lite", "--store", str(store), "--out", str(out),
                 "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--seed", "5", "--quiet"]) == 0
    rows = read_csv(out / "history_fusiongan.csv")
    assert len(rows) == 1
    for name in ("d_loss", "d_real", "d_fake", "g_loss", "g_adversarial", "g_content"):
        assert np.isfinite(float(rows[0][name])), name
    g, d = load_network(out / "g.keras"), load_network(out / "d.keras")
    assert g(np.zeros((1, 132, 132, 2), np.float32)).shape == (1, 120, 120, 1)
    assert d(np.zeros((1, 120, 120, 1), np.float32)).shape == (1, 1)
    # same seed, untrained: the trained networks' BatchNorm offsets/scales (plain trainable variables) moved
    config = preset("lite", "fusiongan").replace(train={"batch_size": 2, "epochs": 1, "steps_per_epoch": 2, "seed": 5})
    configure_runtime(5)
    fresh = build_pair(config, FUSIONGAN)
    for before, after in ((fresh.generator, g), (fresh.discriminator, d)):
        moved = [np.abs(a.numpy() - b.numpy()).max() for a, b in zip(before.weights, after.weights) if a.path.endswith(("gamma", "beta"))]
        assert moved and max(moved) > 0, before.name
    keras.mixed_precision.set_global_policy("float32")
    # twogan fuse --checkpoint RUN: edge pad 6, the trained network in inference mode, rounded bytes
    ir, vis = read_gray_uint8(TNO / "ir" / "1.bmp")[:60, :70], read_gray_uint8(TNO / "vis" / "1.bmp")[:60, :70]
    from tf_twogan.images import write_image

    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis)
    fused = tmp_path / "fused.png"
    assert main(["fuse", "--checkpoint", str(out), "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"),
                 "--out", str(fused)]) == 0
    padded = np.stack([np.pad((image.astype(np.float32) - 127.5) / 127.5, 6, mode="edge") for image in (ir, vis)], axis=-1)
    expected = np.asarray(g(padded[None], training=False))[0, ..., 0] * 127.5 + 127.5
    np.testing.assert_array_equal(read_image(fused), np.clip(np.floor(expected + 0.5), 0, 255).astype(np.uint8))
    assert main(["fuse", "--checkpoint", str(out), "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vis.png"),
                 "--out", str(tmp_path / "tiled.png"), "--tile", "32"]) == 2
    assert not (tmp_path / "tiled.png").exists()


@pytest.mark.needs_data("tno")
def test_the_shipped_fusiongan_baseline_fuses_through_the_cli(tmp_path):
    from tf_twogan.checkpoints import checkpoint_dir
    from tf_twogan.config import TwoGanConfig, preset

    shipped = checkpoint_dir("fusiongan_lite")
    assert TwoGanConfig.from_json(shipped / "config.json") == preset("lite", "fusiongan")  # the model card's command
    out = tmp_path / "fused.png"
    assert main(["fuse", "--checkpoint", str(shipped), "--ir", str(TNO / "ir" / "1.bmp"), "--vis", str(TNO / "vis" / "1.bmp"),
                 "--out", str(out), "--quiet"]) == 0
    fused, ir = read_image(out), read_gray_uint8(TNO / "ir" / "1.bmp")
    assert fused.shape == ir.shape and fused.dtype == np.uint8 and fused.std() > 10  # a trained network: not a flat image


def test_a_fusiongan_run_fuses_matched_folder_pairs_and_keeps_them_on_a_rerun(pair, tmp_path, capsys):
    from tf_twogan.checkpoints import checkpoint_dir
    from tf_twogan.fusiongan import FusionGanFuser
    from tf_twogan.images import write_image

    ir, vis = pair
    ir_dir, vis_dir = write_pair_folders(tmp_path, {"a": (ir, vis)})
    write_image(ir_dir / "only_ir.png", ir)
    shipped = checkpoint_dir("fusiongan_lite")
    argv = ["fuse", "--checkpoint", str(shipped), "--ir", str(ir_dir), "--vis", str(vis_dir), "--out", str(tmp_path / "out"),
            "--quiet"]
    assert main(argv) == 2 and "only_ir" in capsys.readouterr().err
    assert main(argv + ["--skip-unmatched"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png"), FusionGanFuser.from_run(shipped).fuse_gray(ir, vis))
    capsys.readouterr()
    assert main(argv + ["--skip-unmatched"]) == 0
    assert "kept 1 output(s)" in capsys.readouterr().out
