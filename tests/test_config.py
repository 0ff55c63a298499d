"""Configuration: validation names the bad field, JSON round trips, presets."""
import dataclasses
import json

import pytest

from tf_twogan.config import ConfigError, LabelRange, TwoGanConfig, preset


@pytest.mark.parametrize("name,method", [("paper", "twogan"), ("lite", "twogan"), ("paper", "fusiongan"), ("lite", "fusiongan")])
def test_json_round_trip_gives_an_equal_config(tmp_path, name, method):
    config = preset(name, method).replace(train={"seed": 7, "epochs": 3})
    path = config.to_json(tmp_path / "config.json")
    assert TwoGanConfig.from_json(path) == config


def test_paper_preset_holds_the_papers_constants():
    config = preset("paper")
    assert config.loss.generator_target == LabelRange(0.8, 0.8)        # l1
    assert config.loss.real_label == LabelRange(0.8, 0.8)              # alpha
    assert config.loss.fake_label == LabelRange(0.2, 0.2)              # beta
    assert config.loss.first_layer_content_weight == 2.0               # lambda
    assert config.loss.second_layer_content_weight == 100.0            # zeta
    assert (config.train.learning_rate, config.train.batch_size, config.train.epochs) == (1e-4, 32, 10)
    assert config.train.discriminator_steps == 2
    assert (config.data.patch_size, config.data.stride) == (128, 12)


@pytest.mark.parametrize("section,values,message", [
    ("train", {"batch_size": 0}, "train.batch_size"),
    ("train", {"learning_rate": -1.0}, "train.learning_rate"),
    ("train", {"precision": "float16"}, "train.precision"),
    ("generator", {"input_mode": "triple"}, "generator.input_mode"),
    ("generator", {"kernel_sizes": (3, 4, 3, 3)}, "generator.kernel_sizes"),
    ("data", {"stride": 0}, "data.stride"),
])
def test_out_of_range_values_fail_with_their_name(section, values, message):
    with pytest.raises(ConfigError, match=message):
        preset("paper").replace(**{section: values})


def test_unknown_keys_and_bad_files_are_refused(tmp_path):
    data = preset("lite").to_dict()
    data["train"]["epochz"] = 3
    with pytest.raises(ConfigError, match="unknown config.train key"):
        TwoGanConfig.from_dict(data)
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="config.json"):
        TwoGanConfig.from_json(bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_written_config_is_plain_json(tmp_path):
    path = preset("lite").to_json(tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["generator"]["widths"] == [32, 32, 16, 16] and data["method"] == "twogan"


def test_the_sharp_preset_is_lite_with_lambda_100_and_the_max_gradient_second_layer():
    from tf_twogan.config import SecondLayerConfig

    sharp, lite = preset("sharp"), preset("lite")
    assert sharp.preset == "sharp" and sharp.loss.first_layer_content_weight == 100.0
    assert sharp.second_layer == SecondLayerConfig(gradient_target="max_first_layer", init="g1", epochs=10)
    assert sharp.replace(loss={"first_layer_content_weight": 2.0}, second_layer=SecondLayerConfig()) == \
        dataclasses.replace(lite, preset="sharp")
    with pytest.raises(ConfigError, match="two-layer GAN"):
        preset("sharp", "fusiongan")
