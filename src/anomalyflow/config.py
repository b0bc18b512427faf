"""The workflow configuration: validation against the schema, and parameter resolution.

A method's parameters for one (dataset, category) are merged, later entries winning, from:

1. the method's entry under ``methods:`` (with the schema's defaults filled in),
2. ``datasets.<dataset>.method_params.<method>``,
3. ``datasets.<dataset>.category_params.<category>.<method>``.

The workflow hands the merged dict to each rule as ``params``, so changing one category's entry
changes only that category's jobs' params and Snakemake reruns only those.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from anomalyflow.errors import ConfigError


def load_yaml(path: str | os.PathLike) -> dict:
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return data or {}


def load_json(path: str | os.PathLike):
    """A small JSON file (model metadata, statistics) with a clear error when missing or broken."""
    import json

    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


def deep_merge(base: Mapping, update: Mapping | None) -> dict:
    """Recursive dict merge; ``update`` wins; lists and scalars are replaced, not merged."""
    merged = copy.deepcopy(dict(base))
    for key, value in (update or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- validation -------------------------------------------------------------------------------------

def validate_config(config: dict, schema: dict | str | os.PathLike) -> dict:
    """Validate ``config`` in place against the JSON schema, fill defaults, and return it.

    The first problem found is raised as one :class:`ConfigError` naming the key's full path, with a
    suggestion for misspelt keys. Method entries are validated against their family's schema, and so
    are the per-dataset and per-category overrides, once merged. Each dataset's ``evaluation`` block
    becomes the settings that dataset is evaluated with (see :func:`_inherit_evaluation`).
    """
    import jsonschema

    if not isinstance(schema, dict):
        schema = load_yaml(schema)
    _inherit_evaluation(config)
    validator_class = _with_defaults(jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=_error_order)
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_references(config, schema, validator_class)
    expand_data_root(config)
    return config


#: The config's path entries that may start with ``{data_root}`` (see :func:`expand_data_root`).
DATA_ROOT_TOKEN = "{data_root}"


def expand_data_root(config: dict) -> dict:
    """Replace ``{data_root}`` in the dataset roots and teacher paths with the config's ``data_root``, in place.

    One key places every public dataset (``{data_root}/mvtec_loco_anomaly_detection``, ...), so a user with
    the data elsewhere types ``--config data_root=/data`` once instead of editing each root. Plain string
    replacement, not ``str.format``: paths may hold other braces.
    """
    data_root = str(config.get("data_root", "resources/data")).rstrip("/") or "/"

    def expand(value):
        return value.replace(DATA_ROOT_TOKEN, data_root) if isinstance(value, str) else value

    for spec in (config.get("datasets") or {}).values():
        spec["root"] = expand(spec.get("root"))
    for spec in (config.get("teachers") or {}).values():
        for key in ("imagenet_root", "puad_dir"):
            if key in spec:
                spec[key] = expand(spec[key])
        files = spec.get("files") or {}
        for size in list(files):
            files[size] = expand(files[size])
    return config


def _inherit_evaluation(config: dict) -> None:
    """Merge the top-level ``evaluation`` block into each ``datasets.<name>.evaluation``, in place.

    The per-dataset block has the top-level block's keys and checks (a misspelt key or a size below the
    minimum stops the run), and the validator fills a missing key with its schema default; merging first
    makes that default the top-level value, as an override block means. Blocks of the wrong type are
    left for the schema to report.
    """
    top = config.get("evaluation") or {}
    datasets = config.get("datasets")
    if not isinstance(top, Mapping) or not isinstance(datasets, Mapping):
        return
    for spec in datasets.values():
        if isinstance(spec, dict) and isinstance(spec.get("evaluation") or {}, Mapping):
            spec["evaluation"] = deep_merge(top, spec.get("evaluation"))


def _error_order(error) -> tuple:
    # Report the shallowest problem first: a misspelt section name before the keys inside it.
    return (len(error.absolute_path), [str(p) for p in error.absolute_path])


def _with_defaults(validator_class):
    """A validator that also fills in ``default`` values of properties (as Snakemake's validate does)."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        key = extra[0] if extra else "?"
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; known keys: {', '.join(allowed)}"
        place = f"{where}.{key}" if where != "(top level)" else key
        return f"config key '{place}' is not known{suggestion}"
    if error.validator == "required":
        return f"config key '{where}' lacks a required entry: {error.message}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        hint = difflib.get_close_matches(str(error.instance), [str(o) for o in error.validator_value], n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"config key '{where}': {error.instance!r} is not one of {options}{suggestion}"
    return f"config key '{where}': {error.message}"


def _check_references(config: dict, schema: dict, validator_class) -> None:
    methods = config.get("methods", {})
    families = schema.get("$defs", {}).get("families", {})
    for name, entry in methods.items():
        family = entry.get("family")
        if family not in families:
            raise ConfigError(f"config key 'methods.{name}.family': unknown family {family!r}; "
                              f"known: {', '.join(sorted(families))}")
        _validate_family(f"methods.{name}", entry, families[family], schema, validator_class)
    dataset = config.get("dataset")
    datasets = config.get("datasets", {})
    teachers = config.get("teachers", {})
    if dataset is not None and dataset not in datasets:
        raise ConfigError(_unknown("dataset", dataset, datasets))
    for ds_name, ds in datasets.items():
        for method in ds.get("methods", []):
            if method not in methods:
                raise ConfigError(_unknown(f"datasets.{ds_name}.methods", method, methods))
        for method, override in (ds.get("method_params") or {}).items():
            _check_override(f"datasets.{ds_name}.method_params.{method}", method, override, config, families,
                            schema, validator_class)
        for category in ds.get("categories", []):
            for method in ds.get("methods", []):
                _check_links(config, ds_name, category, method, families, teachers)
        for category, per_method in (ds.get("category_params") or {}).items():
            if category not in ds.get("categories", []):
                raise ConfigError(_unknown(f"datasets.{ds_name}.category_params", category, ds.get("categories", [])))
            for method, override in (per_method or {}).items():
                _check_override(f"datasets.{ds_name}.category_params.{category}.{method}", method, override,
                                config, families, schema, validator_class)


def _check_links(config: dict, ds_name: str, category: str, method: str, families: dict, teachers: dict) -> None:
    """A method's references, as merged for one category: members, base method and teacher must exist."""
    methods = config["methods"]
    params = method_params(config, ds_name, category, method)
    where = f"datasets.{ds_name} ({category}): method {method}"
    for member in params.get("members", []):
        if member not in methods:
            raise ConfigError(_unknown(f"{where}'s members", member, methods))
    base = params.get("base")
    if base is not None and base not in config["datasets"][ds_name].get("methods", []):
        raise ConfigError(f"{where} extends {base!r}, which must be listed in datasets.{ds_name}.methods too")
    if "teacher" in families[params["family"]].get("properties", {}) and params.get("teacher") not in teachers:
        raise ConfigError(_unknown(f"{where}'s teacher", params.get("teacher"), teachers))


def _check_override(where, method, override, config, families, schema, validator_class) -> None:
    methods = config.get("methods", {})
    if method not in methods:
        raise ConfigError(_unknown(where.rsplit(".", 1)[0], method, methods))
    merged = deep_merge(methods[method], override)
    if "family" in (override or {}) and override["family"] != methods[method]["family"]:
        raise ConfigError(f"config key '{where}.family': an override cannot change a method's family")
    _validate_family(where, merged, families[merged["family"]], schema, validator_class)


def _validate_family(where: str, entry: dict, family_schema: dict, schema: dict, validator_class) -> None:
    sub = dict(family_schema)
    sub.setdefault("$defs", schema.get("$defs", {}))
    errors = sorted(validator_class(sub).iter_errors(entry), key=_error_order)
    if errors:
        message = _describe(errors[0]).replace("config key '", f"config key '{where}.", 1)
        raise ConfigError(message.replace(f"{where}.(top level)", where))


def _unknown(where: str, value: Any, known) -> str:
    known = [str(k) for k in known]
    hint = difflib.get_close_matches(str(value), known, n=1)
    suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(known) or '(none)'}"
    return f"config key '{where}': {value!r} is not defined{suggestion}"


# --- resolution ------------------------------------------------------------------------------------

#: Parameters that change how a job runs but not what it computes: training resumes bit-exactly from a
#: checkpoint at any interval. The workflow leaves them out of its rules' ``params`` (Snakemake's rerun
#: trigger), so editing one reruns nothing; the job scripts read them from the config.
RUN_ONLY_KEYS = ("checkpoint_every",)


def result_params(params: Mapping) -> dict:
    """``params`` without the :data:`RUN_ONLY_KEYS`: what a job's results depend on."""
    return {key: value for key, value in params.items() if key not in RUN_ONLY_KEYS}


def dataset_config(config: dict, dataset: str) -> dict:
    try:
        return config["datasets"][dataset]
    except KeyError:
        raise ConfigError(_unknown("datasets", dataset, config.get("datasets", {}))) from None


def method_params(config: dict, dataset: str, category: str, method: str) -> dict:
    """The merged parameters of ``method`` for one category of one dataset (see the module doc)."""
    methods = config.get("methods", {})
    if method not in methods:
        raise ConfigError(_unknown("methods", method, methods))
    ds = dataset_config(config, dataset)
    merged = deep_merge(methods[method], (ds.get("method_params") or {}).get(method))
    merged = deep_merge(merged, ((ds.get("category_params") or {}).get(category) or {}).get(method))
    if merged.get("weights") is None:
        # null in a method entry (the schema default) means "the dataset's, else the top-level value".
        merged["weights"] = ds.get("weights") if ds.get("weights") is not None else config.get("weights")
    if merged.get("seed") is None:
        merged["seed"] = config.get("seed")
    return merged


def job_threads(config: dict, dataset: str | None = None, teacher: str | None = None) -> int:
    """Threads of one compute job: the dataset's (or teacher's) ``threads``, else the top-level value."""
    own = None
    if dataset is not None:
        own = dataset_config(config, dataset).get("threads")
    elif teacher is not None:
        own = teacher_params(config, teacher).get("threads")
    return int(own if own is not None else config.get("threads", 1))


def teacher_params(config: dict, name: str) -> dict:
    """The settings of one EfficientAD teacher (``teachers.<name>``), weights defaulting to the top level."""
    teachers = config.get("teachers", {})
    if name not in teachers:
        raise ConfigError(_unknown("teachers", name, teachers))
    params = copy.deepcopy(teachers[name])
    if params.get("weights") is None:
        params["weights"] = config.get("weights")
    return params


def evaluation_params(config: dict, dataset: str) -> dict:
    return deep_merge(config.get("evaluation", {}), dataset_config(config, dataset).get("evaluation"))


def methods_of_family(config: dict, family: str) -> list[str]:
    return [name for name, entry in config.get("methods", {}).items() if entry.get("family") == family]


def resolve_root(root: str | os.PathLike, base: str | os.PathLike | None = None) -> Path:
    """Expand ``~`` and environment variables; relative roots are taken from ``base`` (the workdir)."""
    path = Path(os.path.expandvars(os.path.expanduser(str(root))))
    return path if path.is_absolute() or base is None else Path(base) / path
