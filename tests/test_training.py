"""Real short trainings on real TNO patches: losses, weight updates, run folder, resume, determinism."""
import shutil

import keras
import numpy as np
import pytest

from helpers import TINY_CHAIN, history_epochs, read_csv, tiny_training_config
from tf_twogan.config import ConfigError, preset
from tf_twogan.gan import GAN1
from tf_twogan.training import (RunFolder, build_pair, configure_runtime, load_generators, load_network, open_run_folder, train,
                                train_pair)

TINY = tiny_training_config(batch_size=4, epochs=2, steps_per_epoch=2, seed=1)


def weights(model):
    return [w.numpy().copy() for w in model.weights]


class WeightsAtTrainBegin(keras.callbacks.Callback):
    """Records G's and D's weights when ``fit`` starts: the state the training moves away from."""

    def on_train_begin(self, logs=None):
        self.generator, self.discriminator = weights(self.model.generator), weights(self.model.discriminator)


def test_a_short_real_training_has_finite_losses_and_moves_both_networks(mini_store, tmp_path):
    configure_runtime(1)
    run = open_run_folder(tmp_path / "run", TINY)
    start = WeightsAtTrainBegin()
    pair = train_pair(run, mini_store, TINY, GAN1, verbose=0, callbacks=[start])
    history = read_csv(run.history(GAN1))
    assert len(history) == 2
    losses = ("d_loss", "d_real", "d_fake", "g_loss", "g_adversarial", "g_content", "g_intensity", "g_gradient")
    assert list(history[0]) == ["epoch", *sorted([*losses, "epoch_seconds"])]  # no empty val_* columns
    for name in losses:
        assert np.isfinite(float(history[-1][name])), name
    # every trainable kernel of G and of D has moved away from its weights when fit began
    for network, before in ((pair.generator, start.generator), (pair.discriminator, start.discriminator)):
        kernels = [index for index, variable in enumerate(network.weights) if variable.path.endswith("kernel")]
        assert kernels, network.name
        for index in kernels:
            assert not np.array_equal(before[index], network.weights[index].numpy()), network.weights[index].path
    assert run.network(GAN1, "g").is_file() and run.network(GAN1, "d").is_file()
    assert not run.backup(GAN1).exists()


def test_cli_train_writes_the_whole_run_folder(tiny_run):
    out = tiny_run  # made by `twogan train --config` (conftest)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "g1.keras", "g2.keras", "g3.keras", "d1.keras", "d2.keras", "d3.keras",
            "history_gan1.csv", "history_gan2.csv", "history_gan3.csv", "second_layer_store.h5", "logs"} <= names
    assert any((out / "logs" / "gan3" / "samples").iterdir()), "no TensorBoard sample image"
    g1, g2, g3 = load_generators(out)
    assert g3.name == "g3"


def test_a_resumed_history_keeps_its_header_and_fills_the_columns_it_names(tmp_path):
    # a history begun by Keras' CSVLogger (before 2026-12-01) has empty val_* columns
    from tf_twogan.callbacks import HistoryLogger

    path = tmp_path / "history_gan1.csv"
    path.write_text("epoch,d_loss,g_loss,val_d_loss,val_g_loss\r\n0,0.5,0.25,NA,NA\r\n")
    HistoryLogger(path).on_epoch_end(1, {"g_loss": 0.125, "d_loss": 1.5, "epoch_seconds": 3.0})
    assert read_csv(path) == [{"epoch": "0", "d_loss": "0.5", "g_loss": "0.25", "val_d_loss": "NA", "val_g_loss": "NA"},
                              {"epoch": "1", "d_loss": "1.5", "g_loss": "0.125", "val_d_loss": "NA", "val_g_loss": "NA"}]
    fresh = tmp_path / "fresh.csv"
    for epoch in (0, 1):
        HistoryLogger(fresh).on_epoch_end(epoch, {"g_loss": 0.125 * epoch, "d_loss": 1.5})
    assert fresh.read_bytes() == b"epoch,d_loss,g_loss\r\n0,1.5,0.0\r\n1,1.5,0.125\r\n"  # what CSVLogger writes


class CrashAt(keras.callbacks.Callback):
    """Simulates a crash in the middle of an epoch (after earlier epochs were backed up)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise RuntimeError("simulated crash")


def test_resume_after_an_interrupted_fit_logs_each_epoch_once_and_matches_uninterrupted(mini_store, tmp_path):
    config = TINY.replace(train={"epochs": 3})
    configure_runtime(config.train.seed)
    reference = train_pair(open_run_folder(tmp_path / "straight", config), mini_store, config, GAN1, verbose=0)

    configure_runtime(config.train.seed)
    run = open_run_folder(tmp_path / "crashed", config)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_pair(run, mini_store, config, GAN1, verbose=0, callbacks=[CrashAt(epoch=2, batch=0)])
    assert history_epochs(run.history(GAN1)) == [0, 1] and run.backup(GAN1).is_dir()
    configure_runtime(config.train.seed)
    resumed = train_pair(run, mini_store, config, GAN1, verbose=0)
    assert history_epochs(run.history(GAN1)) == [0, 1, 2]
    for a, b in zip(weights(reference.generator) + weights(reference.discriminator),
                    weights(resumed.generator) + weights(resumed.discriminator)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_same_seed_gives_identical_weights(tiny_run, mini_store, tmp_path):
    # GAN 1 of the shared run (trained by `twogan train`, maybe in another process), again here
    configure_runtime(TINY_CHAIN.train.seed)
    again = train_pair(open_run_folder(tmp_path / "again", TINY_CHAIN), mini_store, TINY_CHAIN, GAN1, verbose=0)
    for network, name in ((again.generator, "g1"), (again.discriminator, "d1")):
        for ours, theirs in zip(network.weights, load_network(tiny_run / f"{name}.keras").weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_rerun_with_another_config_is_refused(tmp_path):
    run = open_run_folder(tmp_path / "run", TINY)
    backup = run.backup(GAN1)  # an epoch was trained: the folder is bound to its config
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1}')
    with pytest.raises(ConfigError, match="differs in train.learning_rate"):   # (a larger --epochs extends the run)
        open_run_folder(tmp_path / "run", TINY.replace(train={"learning_rate": 0.5}))


def test_finished_run_is_not_trained_again(tiny_run, mini_store, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "run")
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "run").iterdir()}
    run = train(mini_store, tmp_path / "run", TINY_CHAIN, verbose=0)
    assert isinstance(run, RunFolder)
    assert {path.name: path.stat().st_mtime_ns for path in run.root.iterdir()} == before


def test_train_step_equals_the_two_forward_pass_loop(mini_store):
    # train_step runs G forward once per batch; the textbook loop (G forward for the D
    # updates, then again for the G update) must give the same trainable weights.
    # Only G's BatchNorm moving statistics differ: that loop updates them twice.
    import tensorflow as tf

    from tf_twogan.data import PatchStream
    from tf_twogan.gan import to_unit_range

    configure_runtime(1)
    batch = next(iter(PatchStream(mini_store, GAN1.kinds, TINY.train.batch_size, seed=0).dataset()))
    ours, textbook = build_pair(TINY, GAN1), build_pair(TINY, GAN1)
    textbook.generator.set_weights(ours.generator.get_weights())
    textbook.discriminator.set_weights(ours.discriminator.get_weights())
    ours.train_step(batch)

    ir, vis = to_unit_range(batch[..., :1]), to_unit_range(batch[..., 1:])  # GAN1.kinds: ir, vis
    inputs = tf.concat([ir, vis], axis=-1)
    intensity, gradient, real = ir, vis, vis
    fused = tf.stop_gradient(textbook.generator(inputs, training=True))
    for _ in range(2):
        with tf.GradientTape() as tape:
            d_loss = textbook._discriminator_losses(textbook.discriminator(real, training=True),
                                                    textbook.discriminator(fused, training=True))["d_loss"]
        d_vars = textbook.discriminator.trainable_variables
        textbook.discriminator_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
    with tf.GradientTape() as tape:
        fused = textbook.generator(inputs, training=True)
        g_loss = textbook._generator_losses(fused, textbook.discriminator(fused, training=True), [intensity], [gradient])["g_loss"]
    g_vars = textbook.generator.trainable_variables
    textbook.generator_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))

    for network in ("generator", "discriminator"):
        for a, b in zip(getattr(ours, network).trainable_weights, getattr(textbook, network).trainable_weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"{network} {a.path}")
    for a, b in zip(ours.discriminator.non_trainable_weights, textbook.discriminator.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    moving = [w for w in ours.generator.non_trainable_weights if "moving_mean" in w.path]
    assert moving and any(np.abs(w.numpy()).max() > 0 for w in moving)


def test_train_config_file_replaces_the_preset_and_flags_still_override(tmp_path):
    from tf_twogan.cli import build_parser, resolve_config

    changed = preset("lite").replace(loss={"first_layer_content_weight": 100.0}, generator={"input_mode": "single"})
    changed.to_json(tmp_path / "ablation.json")
    args = build_parser().parse_args(["train", "--store", "s.h5", "--out", "run", "--config", str(tmp_path / "ablation.json"),
                                      "--epochs", "3"])
    assert resolve_config(args) == changed.replace(train={"epochs": 3})
    args = build_parser().parse_args(["train", "--store", "s.h5", "--out", "run"])
    assert resolve_config(args) == preset("sharp")  # the default checkpoint's preset (paper takes about 50 h on a CPU)
    args = build_parser().parse_args(["train", "--store", "s.h5", "--out", "run", "--config", str(tmp_path / "ablation.json"),
                                      "--preset", "lite"])
    with pytest.raises(ConfigError, match="--config"):
        resolve_config(args)
    (tmp_path / "bad.json").write_text('{"loss": {"lambda": 2}}')
    args = build_parser().parse_args(["train", "--store", "s.h5", "--out", "run", "--config", str(tmp_path / "bad.json")])
    with pytest.raises(ConfigError, match="bad.json.*lambda"):
        resolve_config(args)


def test_second_layer_epochs_flag_sets_gan3s_own_count_which_epochs_leaves_alone():
    """sharp gives GAN 3 its own 10 epochs: ``--epochs`` moves GAN 1 and GAN 2 only, ``--second-layer-epochs`` GAN 3."""
    from tf_twogan.cli import build_parser, resolve_config
    from tf_twogan.run_folder import gan3_epochs

    base = ["train", "--store", "s.h5", "--out", "run", "--preset", "sharp"]
    config = resolve_config(build_parser().parse_args([*base, "--epochs", "1"]))
    assert (config.train.epochs, gan3_epochs(config)) == (1, 10)
    config = resolve_config(build_parser().parse_args([*base, "--epochs", "1", "--second-layer-epochs", "2"]))
    assert (config.train.epochs, gan3_epochs(config)) == (1, 2)
