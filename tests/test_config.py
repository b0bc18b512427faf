import copy

import pytest

from anomalyflow.config import method_params
from anomalyflow.errors import ConfigError
from anomalyflow.validation import validate_config


def test_shipped_config_validates_and_knows_every_public_dataset(config, schema):
    validate_config(config, schema)
    assert {"demo", "loco", "mvtec_ad", "visa", "btad"} <= set(config["datasets"])
    assert config["dataset"] == "demo"  # plain `snakemake` stays the offline demo


def test_data_root_places_every_real_dataset_and_the_imagenet_folder(config, schema):
    config["data_root"] = "/data/"
    validate_config(config, schema)
    assert config["datasets"]["loco"]["root"] == "/data/mvtec_loco_anomaly_detection"
    assert config["datasets"]["mvtec_ad"]["root"] == "/data/mvtec_anomaly_detection"
    assert config["datasets"]["visa"]["root"] == "/data/VisA_20220922"
    assert config["datasets"]["btad"]["root"] == "/data/BTech_Dataset_transformed"
    assert config["teachers"]["imagenet"]["imagenet_root"] == "/data/imagenet/train"
    assert config["datasets"]["demo"]["root"] == "resources/data/demo"  # generated, not looked for


def test_weights_and_threads_come_from_the_dataset_before_the_top_level(config, schema):
    validate_config(config, schema)
    from anomalyflow.config import job_threads

    assert method_params(config, "loco", "pushpins", "patchcore")["weights"] == "imagenet"
    assert method_params(config, "demo", "tray", "patchcore")["weights"] == "none"
    assert job_threads(config, dataset="demo") == 1 and job_threads(config, dataset="loco") == config["threads"]
    assert job_threads(config, teacher="demo") == 1
    config["methods"]["patchcore"]["weights"] = "my.pth"  # a method's own value wins
    assert method_params(config, "demo", "tray", "patchcore")["weights"] == "my.pth"


def test_misspelt_keys_name_the_path_and_suggest(config, schema):
    bad = copy.deepcopy(config)
    bad["methods"]["patchcore"]["corset_fraction"] = 0.1
    with pytest.raises(ConfigError, match=r"methods\.patchcore\.corset_fraction.*did you mean 'coreset_fraction'"):
        validate_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["evalution"] = {}
    with pytest.raises(ConfigError, match="'evalution' is not known; did you mean 'evaluation'"):
        validate_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["datasets"]["demo"]["method_params"]["patchcore"]["blur_sigm"] = 1
    with pytest.raises(ConfigError, match=r"datasets\.demo\.method_params\.patchcore\.blur_sigm"):
        validate_config(bad, schema)


def test_unknown_names(config, schema):
    bad = copy.deepcopy(config)
    bad["methods"]["patchcore"]["backbone"] = "wide_resnet50"
    with pytest.raises(ConfigError, match="did you mean 'wide_resnet50_2'"):
        validate_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["datasets"]["demo"]["methods"] = ["patchcor"]
    with pytest.raises(ConfigError, match="did you mean 'patchcore'"):
        validate_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["datasets"]["demo"]["layout"] = "mvtec"
    with pytest.raises(ConfigError, match="layout"):
        validate_config(bad, schema)


def test_category_overrides_only_touch_their_category(config, schema):
    config["datasets"]["demo"]["category_params"] = {"tray": {"patchcore": {"coreset_fraction": 0.5}}}
    validate_config(config, schema)
    tray = method_params(config, "demo", "tray", "patchcore")
    board = method_params(config, "demo", "board", "patchcore")
    assert tray["coreset_fraction"] == 0.5
    assert board["coreset_fraction"] == 0.1
    assert tray["image_size"] == board["image_size"] == 128
    assert {k: v for k, v in tray.items() if k != "coreset_fraction"} == {
        k: v for k, v in board.items() if k != "coreset_fraction"}
