"""Issue 15 (2): the schema (src/anomalyflow/schema.yaml) is the one source of defaults.

The workflow fills a config's unset keys from it, and the library builds every family's (and teacher's)
parameters from the same entries (anomalyflow.params), so both give the same results. No library function
keeps a default of its own for a key of its family's schema entry.
"""

import inspect

import pytest

from anomalyflow.params import STANDALONE, family_params, teacher_settings

FAMILIES = ["patchcore", "efficientad", "puad", "pni", "pni_refined", "ensemble"]


def _as_params(value):
    return tuple(value) if isinstance(value, list) else value


@pytest.mark.parametrize("family", FAMILIES)
def test_unset_parameters_take_the_schemas_defaults(schema, family):
    properties = schema["$defs"]["families"][family]["properties"]
    params = family_params(family, {})
    assert "family" not in params
    compared = 0
    for key, spec in properties.items():
        if key == "family" or "default" not in spec:
            continue
        if key in STANDALONE:  # inherited from the top level in the workflow; standalone, no download
            expected = STANDALONE[key] if STANDALONE[key] is not None else schema["properties"][key]["default"]
        elif isinstance(spec["default"], dict):
            continue  # a nested block: its own keys' defaults are filled (fusion_weights, below)
        else:
            expected = _as_params(spec["default"])
        assert params[key] == expected, (family, key)
        compared += 1
    assert compared >= 3
    if family == "puad":
        assert dict(params["fusion_weights"]) == {"picturable": 1.0, "unpicturable": 1.0}


def test_a_teachers_unset_settings_take_the_schemas_defaults(schema):
    settings = teacher_settings({})
    for key, spec in schema["$defs"]["teacher"]["properties"].items():
        if "default" in spec and not isinstance(spec["default"], dict) and key not in STANDALONE:
            assert settings[key] == _as_params(spec["default"]), key


def _entry_points():
    from anomalyflow.efficientad.distill import distill_teacher, fit_teacher
    from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats, teacher_stats
    from anomalyflow.efficientad.stages import fit_efficientad, fit_efficientad_quantiles
    from anomalyflow.efficientad.train import train_efficientad
    from anomalyflow.ensemble import ensemble_category
    from anomalyflow.patchcore import PatchCore, fit_patchcore
    from anomalyflow.pni.model import PNI
    from anomalyflow.pni.refine import fit_pni_refined
    from anomalyflow.pni.stages import fit_pni_memory, fit_pni_mlp
    from anomalyflow.puad import fit_puad

    return {
        "patchcore": [PatchCore, fit_patchcore], "pni": [PNI, fit_pni_memory, fit_pni_mlp],
        "pni_refined": [fit_pni_refined], "puad": [fit_puad], "ensemble": [ensemble_category],
        "efficientad": [fit_efficientad, fit_efficientad_quantiles, train_efficientad],
        "teacher": [fit_teacher, distill_teacher, teacher_stats, compute_imagenet_stats],
    }


#: Keyword defaults that share a name with a schema key but are not that key: (function, name) -> why.
NOT_THE_SCHEMA_KEY = {
    ("compute_imagenet_stats", "batch_size"): "images per Ψ forward pass; the teacher's batch_size is distillation's",
}


def test_no_library_entry_point_keeps_a_default_of_a_schema_key(schema):
    for owner, functions in _entry_points().items():
        entry = schema["$defs"]["teacher"] if owner == "teacher" else schema["$defs"]["families"][owner]
        keys = set(entry["properties"])
        for function in functions:
            target = function.__init__ if inspect.isclass(function) else function
            for name, parameter in inspect.signature(target).parameters.items():
                if name in keys and parameter.default not in (inspect.Parameter.empty, None):
                    assert (function.__name__, name) in NOT_THE_SCHEMA_KEY, (
                        f"{function.__name__}({name}={parameter.default!r}) repeats a default of the schema's "
                        f"{owner} entry; take it from the parameters object (anomalyflow.params)")
