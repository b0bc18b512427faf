"""The workflow's defaults (config/schema.yaml) equal the library's, so both give the same results."""

import inspect

import pytest

from anomalyflow.config import load_yaml

INHERITED = {"weights", "seed", "family", "base", "members", "teacher", "pretrained"}  # top-level or references


def _library_defaults(family):
    if family == "patchcore":
        from anomalyflow.patchcore import DEFAULTS
        return DEFAULTS
    if family == "pni":
        from anomalyflow.pni.model import DEFAULTS
        return DEFAULTS
    if family == "pni_refined":
        from anomalyflow.pni.refined import REFINE_DEFAULTS
        return REFINE_DEFAULTS
    if family == "efficientad":
        from anomalyflow.efficientad.train import train_efficientad
        signature = inspect.signature(train_efficientad).parameters
        return {name: p.default for name, p in signature.items() if p.default is not inspect.Parameter.empty}
    raise KeyError(family)


@pytest.mark.parametrize("family", ["patchcore", "pni", "pni_refined", "efficientad"])
def test_schema_defaults_match_the_library(repo_root, family):
    schema = load_yaml(repo_root / "config" / "schema.yaml")["$defs"]["families"][family]["properties"]
    library = _library_defaults(family)
    compared = 0
    for key, spec in schema.items():
        if key in INHERITED or "default" not in spec or key not in library:
            continue
        assert spec["default"] == library[key], f"{family}.{key}: schema {spec['default']!r}, library {library[key]!r}"
        compared += 1
    assert compared >= 5
