"""Issue 15 (3): the model-folder contract. Each family's files are named once (anomalyflow.model_folder); the
workflow's rules declare exactly those files, stage by stage, and no job leaves an undeclared file behind."""

from __future__ import annotations

import json
import re

import pytest
from workflow_helpers import REPO

from anomalyflow.errors import ConfigError, DataError
from anomalyflow.model_folder import FOLDERS, MODEL_JSON, PATCHCORE_FOLDER, ModelFolder, read_family
from anomalyflow.readers import load_yaml
from anomalyflow.thresholds import OPERATING_POINTS_CSV

#: What a method's folder holds besides its model files: the outputs of scoring and evaluation (outputs.py), and
#: its operating points (thresholds.py).
METHOD_OUTPUTS = {"scores.csv", "maps.npz", "metrics.csv", OPERATING_POINTS_CSV}


def _rule_names() -> set[str]:
    names = set()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        names |= set(re.findall(r"^rule (\w+):", path.read_text(), flags=re.MULTILINE))
    return names


def test_every_family_has_a_folder_and_every_stage_a_rule(schema):
    assert set(FOLDERS) == set(schema["$defs"]["families"])
    rules = _rule_names()
    for folder in FOLDERS.values():
        for stage in folder.stages:
            assert f"{folder.family}_{stage}" in rules, f"no rule {folder.family}_{stage} writes {folder.names(stage)}"


def test_model_json_of_another_family_is_refused_in_one_line(tmp_path):
    (tmp_path / MODEL_JSON).write_text(json.dumps({"family": "pni"}))
    with pytest.raises(ConfigError, match=r"model.json: family 'pni' is not 'patchcore'"):
        PATCHCORE_FOLDER.read(tmp_path)
    assert read_family(tmp_path) == "pni"
    (tmp_path / MODEL_JSON).write_text(json.dumps({"family": "nope"}))
    with pytest.raises(DataError, match="not a model folder of a known family"):
        read_family(tmp_path)


def test_a_folder_names_each_file_once_and_only_known_stages():
    with pytest.raises(ValueError, match="exactly one stage"):
        ModelFolder("x", {"a": "a.pt"}, {"fit": ("a",), "again": ("a", "model")})
    with pytest.raises(ValueError, match="no stage 'score'"):
        PATCHCORE_FOLDER.names("score")


@pytest.mark.slow
def test_every_file_of_every_demo_model_folder_is_declared(demo_run):
    """No stage writes a file its rule does not declare (e.g. a file passed between two rules)."""
    config = load_yaml(demo_run / "config" / "config.yaml")
    for category in config["datasets"]["demo"]["categories"]:
        for method in config["datasets"]["demo"]["methods"]:
            folder = demo_run / "results" / "demo" / category / method
            family = config["methods"][method]["family"]
            written = {path.name for path in folder.iterdir()}
            assert written - METHOD_OUTPUTS == set(FOLDERS[family].names()), (folder, written)
