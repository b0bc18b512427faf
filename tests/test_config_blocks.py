"""Issue 14 (3): every config block is validated, and no library entry point swallows an unknown key.

A key the schema does not know stops the run with one line naming it (``test_config.py`` covers the top
level and the method entries); here: the blocks below the top level, the walk that keeps every schema
object closed unless it is meant to be open, and the library functions that take config-derived keyword
arguments or parameter dicts, which must refuse an unknown key rather than run with a default.
"""

from __future__ import annotations

import copy
import inspect

import pytest

from anomalyflow.config import OPERATING_POINT_KEYS, evaluation_params, false_alarm_rates
from anomalyflow.errors import ConfigError
from anomalyflow.validation import validate_config

#: The schema objects that accept keys the schema does not list, each with why (by config path; ``*`` is
#: any name). Every other object must have ``additionalProperties: false``.
OPEN_ON_PURPOSE = {
    "teachers": "teacher names, chosen by the user; each value is a closed teacher block",
    "methods": "method names, chosen by the user (the {method} wildcard)",
    "methods.*": "a method entry: its keys depend on its family, so config.py validates it against the closed "
                 "$defs/families/<family> schema (once alone, once merged with each override)",
    "datasets": "dataset names, chosen by the user (the {dataset} wildcard)",
    "datasets.*.method_params": "method name -> overrides; config.py checks each name against methods: and each "
                                "merged override against its family's closed schema",
    "datasets.*.category_params": "category -> method -> overrides; config.py checks the category against the "
                                  "dataset's categories, then as method_params",
}


# --- the per-dataset evaluation block (the cases) -------------------------------------------


@pytest.mark.parametrize(("block", "message"), [
    ({"szie": 64}, "config key 'datasets.demo.evaluation.szie' is not known; did you mean 'size'?"),
    ({"fpr_limt": 0.05}, "config key 'datasets.demo.evaluation.fpr_limt' is not known; did you mean 'fpr_limit'?"),
    ({"size": 4}, "config key 'datasets.demo.evaluation.size': 4 is less than the minimum of 8"),
    ({"spro_limits": [0.0]}, "config key 'datasets.demo.evaluation.spro_limits.0': 0.0 is less than or equal to "
                             "the minimum of 0"),
    ({"false_alarm_rates": [0.01, 1.0]}, "config key 'datasets.demo.evaluation.false_alarm_rates.1': 1.0 is greater "
                                         "than or equal to the maximum of 1"),
    ({"false_alarm_rates": [-0.01]}, "config key 'datasets.demo.evaluation.false_alarm_rates.0': -0.01 is less than "
                                     "the minimum of 0"),
    ({"false_alarm_rates": []}, "config key 'datasets.demo.evaluation.false_alarm_rates': [] should be non-empty"),
    ({"false_alarm_rates": [0.01, 0.01]}, "config key 'datasets.demo.evaluation.false_alarm_rates': [0.01, 0.01] has "
                                          "non-unique elements"),
])
def test_a_dataset_evaluation_block_is_validated(config, schema, block, message):
    config["datasets"]["demo"]["evaluation"] = block
    with pytest.raises(ConfigError) as error:
        validate_config(config, schema)
    assert str(error.value) == message


def test_a_dataset_evaluation_block_overrides_only_the_keys_it_sets(config, schema):
    config["evaluation"] = {"fpr_limit": 0.1, "spro_limits": [0.05, 1.0]}
    config["datasets"]["demo"]["evaluation"] = {"size": 64}
    validate_config(config, schema)
    # not the schema defaults (0.3, five limits) that the validator would fill into the dataset block alone
    assert evaluation_params(config, "demo") == {"size": 64, "fpr_limit": 0.1, "spro_limits": [0.05, 1.0]}
    # the operating points' rates are not the metrics' settings: changing them reruns no metrics job
    assert false_alarm_rates(config, "demo") == [0, 0.001, 0.01, 0.05]
    config["datasets"]["demo"]["evaluation"] = {"false_alarm_rates": [0.02]}
    validate_config(config, schema)
    assert false_alarm_rates(config, "demo") == [0.02] and "false_alarm_rates" not in evaluation_params(config, "demo")
    assert validate_config(copy.deepcopy(config), schema) == config  # idempotent: cluster jobs validate again


@pytest.mark.parametrize(("path", "block", "message"), [
    ("datasets.demo.synthetic", {"seed": 0, "sede": 1},
     "config key 'datasets.demo.synthetic.sede' is not known; did you mean 'seed'?"),
    ("teachers.demo.synthetic", {"n_image": 16},
     "config key 'teachers.demo.synthetic.n_image' is not known; did you mean 'n_images'?"),
    ("methods.efficientad_s.pretrained", {"puad_dir": "p", "dataset_folder": "d", "categroy": "c"},
     "config key 'methods.efficientad_s.pretrained.categroy' is not known; did you mean 'category'?"),
])
def test_generator_and_pretrained_blocks_are_closed(config, schema, path, block, message):
    *parents, name = path.split(".")
    target = config
    for parent in parents:
        target = target[parent]
    target[name] = block
    with pytest.raises(ConfigError) as error:
        validate_config(config, schema)
    assert str(error.value) == message


# --- the schema walk ---------------------------------------------------------------------------------


def _resolve(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        target = defs[node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _open_objects(node, path: str, defs: dict):
    """Config paths of the object schemas under ``node`` that accept keys they do not list."""
    if not isinstance(node, dict):
        return
    node = _resolve(node, defs)
    types = node.get("type", [])
    if "object" in (types if isinstance(types, list) else [types]) or "properties" in node:
        extra = node.get("additionalProperties", True)
        if extra is not False:
            yield path
        for name, sub in node.get("properties", {}).items():
            yield from _open_objects(sub, f"{path}.{name}".lstrip("."), defs)
        if isinstance(extra, dict):
            yield from _open_objects(extra, f"{path}.*".lstrip("."), defs)
    for key in ("items", "anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []) if isinstance(node.get(key), list) else [node.get(key)]:
            yield from _open_objects(sub, path, defs)


def test_no_schema_object_is_open_unless_meant_to_be(schema):
    defs = schema["$defs"]
    found = set(_open_objects(schema, "", defs))
    for family, family_schema in defs["families"].items():
        found |= set(_open_objects(family_schema, f"methods.*({family})", defs))
    unexpected = sorted(found - set(OPEN_ON_PURPOSE))
    assert not unexpected, f"open schema objects (add additionalProperties: false, or say why in OPEN_ON_PURPOSE): " \
                           f"{unexpected}"
    assert set(OPEN_ON_PURPOSE) <= found, "OPEN_ON_PURPOSE names an object the schema no longer has"


def test_the_walk_finds_an_open_block(schema):
    opened = copy.deepcopy(schema)
    del opened["$defs"]["evaluation"]["additionalProperties"]
    assert {"evaluation", "datasets.*.evaluation"} <= set(_open_objects(opened, "", opened["$defs"]))


# --- the library: the schema's keys, and no unknown key swallowed ---------------------------------


def _signature_keys(function, *skip) -> set[str]:
    return set(inspect.signature(function).parameters) - set(skip)


def test_generator_blocks_take_exactly_the_generators_arguments(schema):
    from anomalyflow.data.clutter import generate_clutter, planned_clutter_files
    from anomalyflow.data.synth import generate, planned_files

    dataset = set(schema["$defs"]["dataset"]["properties"]["synthetic"]["properties"])
    assert dataset == _signature_keys(generate, "out_dir", "categories") == _signature_keys(planned_files, "categories")
    teacher = set(schema["$defs"]["teacher"]["properties"]["synthetic"]["properties"])
    assert teacher == _signature_keys(generate_clutter, "out_dir") == _signature_keys(planned_clutter_files)
    with pytest.raises(TypeError, match="n_image"):
        planned_clutter_files(n_image=3)


def test_evaluation_block_is_evaluate_categorys_keywords(schema, tmp_path):
    from anomalyflow.evaluate import MIN_SIZE, evaluate_category

    block = {key: spec for key, spec in schema["$defs"]["evaluation"]["properties"].items()
             if key not in OPERATING_POINT_KEYS}  # those place the operating points (anomalyflow.thresholds)
    parameters = inspect.signature(evaluate_category).parameters
    assert {key: spec["default"] for key, spec in block.items()} == {
        key: list(parameters[key].default) if key == "spro_limits" else parameters[key].default for key in block}
    assert block["size"]["minimum"] == MIN_SIZE
    missing = tmp_path / "nothing.csv"  # the settings are checked before any file is read
    with pytest.raises(TypeError, match="szie"):
        evaluate_category(missing, missing, None, method="m", szie=64)
    with pytest.raises(ConfigError, match="evaluation size: 4 is not a whole number of at least 8 pixels"):
        evaluate_category(missing, missing, None, method="m", size=4)
    with pytest.raises(ConfigError, match=r"evaluation spro_limits: 1.5 is not a fraction in \(0, 1\]"):
        evaluate_category(missing, missing, None, method="m", spro_limits=[0.1, 1.5])


def _entry_points(family: str, params: dict, tmp_path):
    """Call the family's library entry point that takes a method's parameter dict (nothing is read before
    the check, so the paths need not exist); return the parameters it works with."""
    if family == "patchcore":
        from anomalyflow.patchcore import PatchCore
        return PatchCore(params).params
    if family == "pni":
        from anomalyflow.pni.model import PNI
        return PNI(params).params
    if family == "pni_refined":
        from anomalyflow.pni.refined import resolve_refine_params
        return resolve_refine_params(params)
    if family == "efficientad":
        from anomalyflow.efficientad.stages import fit_efficientad
        return fit_efficientad(tmp_path / "samples.csv", tmp_path, params, category="c", teacher_file=None,
                               penalty_images=None)
    if family == "ensemble":
        from anomalyflow.ensemble import ensemble_category
        return ensemble_category(tmp_path / "samples.csv", [], tmp_path / "s.csv", tmp_path / "m.npz",
                                 tmp_path / "e.json", params)
    from anomalyflow.puad import fit_puad
    return fit_puad(tmp_path / "samples.csv", tmp_path, tmp_path, params)


@pytest.mark.parametrize("family", ["patchcore", "pni", "pni_refined"])
def test_the_library_works_with_exactly_each_familys_schema_keys(schema, family, tmp_path):
    properties = schema["$defs"]["families"][family]["properties"]
    # every key with a default; a reference without one (a refined PNI's base) only when given
    assert set(_entry_points(family, {}, tmp_path)) == {key for key, spec in properties.items() if "default" in spec}


@pytest.mark.parametrize(("family", "typo", "meant"), [
    ("patchcore", "coreset_fractoin", "coreset_fraction"), ("pni", "mlp_epoch", "mlp_epochs"),
    ("pni_refined", "refine_sise", "refine_size"), ("efficientad", "iteration", "iterations"),
    ("puad", "featur", "feature"), ("ensemble", "top_fractoin", "top_fraction"),
])
def test_a_misspelt_parameter_stops_the_library_too(family, typo, meant, tmp_path):
    with pytest.raises(ConfigError) as error:
        _entry_points(family, {"family": family, typo: 1}, tmp_path)
    assert str(error.value) == f"{family}: parameter '{typo}' is not known; did you mean '{meant}'?"


def test_a_value_the_schema_refuses_stops_the_library_too():
    from anomalyflow.pni.model import PNI

    with pytest.raises(ConfigError, match="config key 'pni.score': 'nb_coorr' is not one of nb_coor, nb, coor"):
        PNI({"score": "nb_coorr"})


def test_puad_fusion_weights_refuse_an_unknown_part():
    from anomalyflow.puad import PUAD

    class _EfficientAD:
        device, params = "cpu", {}

    with pytest.raises(ConfigError, match="puad fusion_weights: parameter 'picturble' is not known; did you mean "
                                          "'picturable'"):
        PUAD(_EfficientAD(), None, fusion_weights={"picturble": 2.0})
