"""GAN 3's named designs: combined content targets, G1 start, a reused first layer, resume past GAN 1."""
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import TINY_CHAIN as TINY
from helpers import gan3_train_argv
from tf_twogan import losses
from tf_twogan.cli import main
from tf_twogan.config import ConfigError, SecondLayerConfig, TwoGanConfig
from tf_twogan.gan import GAN3, GAN3_SWAPPED, second_layer_roles
from tf_twogan.training import load_generators, load_network, train


def image(values) -> tf.Tensor:
    return tf.constant(np.asarray(values, np.float32)[None, :, :, None])


def test_max_gradient_takes_per_pixel_the_laplacian_of_larger_magnitude():
    # a: a single bright pixel in the centre -> Laplacian -4 there, +1 at its 4 neighbours;
    # b: a bright left column -> Laplacian -3 / -2 on it, +1 next to it
    a = np.zeros((3, 3))
    a[1, 1] = 1
    b = np.zeros((3, 3))
    b[:, 0] = 1
    lap_a = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    lap_b = np.array([[-3, 1, 0], [-2, 1, 0], [-3, 1, 0]], float)
    np.testing.assert_array_equal(losses.laplacian(image(b))[0, ..., 0], lap_b)
    expected = np.where(np.abs(lap_b) > np.abs(lap_a), lap_b, lap_a)
    assert expected.tolist() == [[-3, 1, 0], [-2, -4, 1], [-3, 1, 0]]
    np.testing.assert_array_equal(losses.max_gradient([image(a), image(b)])[0, ..., 0], expected)


def test_max_intensity_is_the_per_pixel_maximum():
    np.testing.assert_array_equal(losses.max_intensity([image([[1, 5]]), image([[3, 2]])])[0, ..., 0], [[3, 5]])


def test_one_target_each_gives_the_papers_content_terms():
    rng = np.random.default_rng(0)
    fused, ir, vis = (image(rng.uniform(-1, 1, (8, 8))) for _ in range(3))
    intensity, gradient = losses.content_terms(fused, [ir], [vis])
    assert float(intensity) == float(losses.intensity_term(fused, ir))
    laplacian_difference = losses.laplacian(fused).numpy() - losses.laplacian(vis).numpy()
    assert float(gradient) == pytest.approx(float(np.mean(np.square(laplacian_difference))), rel=1e-6)


def test_second_layer_roles_name_the_patch_kinds_of_each_target():
    assert second_layer_roles(False) == GAN3
    assert second_layer_roles(True) == GAN3_SWAPPED
    roles = second_layer_roles(False, "max_sources", "max_first_layer")
    assert roles.intensity_target == ("ir", "vis") and roles.gradient_target == ("irv", "vir")
    assert roles.inputs == ("irv", "vir") and roles.real == "vir" and roles.layer == 2
    assert set(roles.kinds) == {"irv", "vir", "ir", "vis"}


def test_second_layer_settings_are_validated_and_round_trip_through_json(tmp_path):
    with pytest.raises(ConfigError, match="second_layer.gradient_target"):
        SecondLayerConfig(gradient_target="sharpest")
    with pytest.raises(ConfigError, match="second_layer.init"):
        SecondLayerConfig(init="g2")
    with pytest.raises(ConfigError, match="second_layer.epochs"):
        SecondLayerConfig(epochs=True)
    config = TINY.replace(second_layer={"gradient_target": "max_first_layer", "init": "g1", "epochs": 3})
    assert TwoGanConfig.from_json(config.to_json(tmp_path / "c.json")) == config


def test_a_config_written_before_the_second_layer_section_loads_with_the_papers_reading():
    from tf_twogan.checkpoints import checkpoint_dir

    config = TwoGanConfig.from_json(checkpoint_dir("fusiongan_lite") / "config.json")
    assert config.second_layer == SecondLayerConfig()


class FirstWeights(keras.callbacks.Callback):
    """Records GAN 3's generator weights when its training begins."""

    def __init__(self):
        super().__init__()
        self.weights = None

    def on_train_begin(self, logs=None):
        if self.model.name == "gan3":
            self.weights = [w.numpy().copy() for w in self.model.generator.weights]


@pytest.fixture
def first_layer(tiny_run):
    """A finished run of ``TINY`` (all three GANs): the session's shared one."""
    return tiny_run


def test_a_run_on_a_reused_first_layer_trains_only_gan3_and_equals_the_uninterrupted_run(first_layer, mini_store, tmp_path):
    # resuming past GAN 1 in a new process builds only GAN 3: it must start from the
    # same random state as in the run that trained all three (each GAN reseeds)
    out = tmp_path / "reused"
    assert main(gan3_train_argv(mini_store, out, first_layer / "config.json", first_layer)) == 0
    for name in ("g1.keras", "g2.keras", "history_gan1.csv", "history_gan2.csv"):
        assert (out / name).read_bytes() == (first_layer / name).read_bytes(), name
    assert not (out / "logs" / "gan1").exists(), "GAN 1 trained again"
    ours, theirs = load_generators(out)[2], load_generators(first_layer)[2]
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_g1_init_starts_gan3_from_g1s_weights(first_layer, mini_store, tmp_path):
    config = TINY.replace(second_layer={"init": "g1"})
    recorder = FirstWeights()
    train(mini_store, tmp_path / "g1init", config, verbose=0, callbacks=[recorder], first_layer_from=first_layer)
    g1 = load_network(first_layer / "g1.keras")
    assert recorder.weights is not None
    for start, expected in zip(recorder.weights, g1.weights):
        np.testing.assert_array_equal(start, expected.numpy())


def test_targets_from_the_sources_put_ir_and_vis_into_the_second_layer_store(first_layer, mini_store, tmp_path):
    from tf_twogan.store import PatchStore

    config = TINY.replace(second_layer={"intensity_target": "max_sources", "gradient_target": "max_sources"})
    run = train(mini_store, tmp_path / "sources", config, verbose=0, first_layer_from=first_layer)
    with PatchStore(run.second_layer_store, ("irv", "vir", "ir", "vis")) as store, PatchStore(mini_store) as source:
        np.testing.assert_array_equal(store.read("ir", 0, 5), source.read("ir", 0, 5))
    assert run.finished(second_layer_roles(False, "max_sources", "max_sources"))


def test_a_first_layer_of_another_config_is_refused(first_layer, mini_store, tmp_path):
    other = TINY.replace(loss={"first_layer_content_weight": 100.0})
    with pytest.raises(ConfigError, match="first_layer_content_weight"):
        train(mini_store, tmp_path / "other", other, verbose=0, first_layer_from=first_layer)
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copyfile(first_layer / "config.json", empty / "config.json")
    with pytest.raises(ConfigError, match="missing g1.keras, g2.keras"):
        train(mini_store, tmp_path / "nothing", TINY, verbose=0, first_layer_from=empty)


def test_an_adopted_first_layer_lets_gan3s_schedule_and_precision_differ_and_is_recorded(first_layer, tmp_path):
    from tf_twogan.run_folder import FIRST_LAYER_CONFIG, RunFolder, adopt_first_layer

    gan3_only = TINY.replace(train={"epochs": TINY.train.epochs + 3, "steps_per_epoch": 7, "precision": "mixed_bfloat16",
                                    "learning_rate": 3e-3, "seed": 11})
    run = RunFolder(tmp_path / "run")
    run.root.mkdir()
    assert FIRST_LAYER_CONFIG in adopt_first_layer(run, first_layer, gan3_only)
    assert TwoGanConfig.from_json(run.root / FIRST_LAYER_CONFIG) == TwoGanConfig.from_json(first_layer / "config.json")
    # a run that itself adopted its first layer passes the original record on, not its own config
    again = RunFolder(tmp_path / "again")
    again.root.mkdir()
    gan3_only.to_json(run.config)
    adopt_first_layer(again, run.root, gan3_only)
    assert (again.root / FIRST_LAYER_CONFIG).read_bytes() == (first_layer / "config.json").read_bytes()
    with pytest.raises(ConfigError, match="generator.widths"):
        adopt_first_layer(RunFolder(tmp_path / "wider"), first_layer, TINY.replace(generator={"widths": (8, 8, 8, 8)}))


def test_paper_sharp_is_the_paper_preset_with_sharps_second_layer():
    from tf_twogan.config import preset

    paper, sharp, both = preset("paper"), preset("sharp"), preset("paper_sharp")
    assert both.second_layer.gradient_target == sharp.second_layer.gradient_target == "max_first_layer"
    assert both.second_layer.init == "g1" and both.second_layer.epochs is None
    assert both.replace(second_layer=paper.second_layer).to_dict() | {"preset": "paper"} == paper.to_dict()
