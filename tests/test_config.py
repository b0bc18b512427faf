import copy

import pytest

from anomalyflow.config import load_yaml, method_params, validate_config
from anomalyflow.errors import ConfigError


@pytest.mark.parametrize("name", ["config", "mvtec_ad", "loco", "visa", "btad"])
def test_shipped_configs_validate(repo_root, schema, name):
    base = load_yaml(repo_root / "config" / "config.yaml")
    if name != "config":
        from anomalyflow.config import deep_merge

        base = deep_merge(base, load_yaml(repo_root / "config" / f"{name}.yaml"))
    validate_config(base, schema)


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
