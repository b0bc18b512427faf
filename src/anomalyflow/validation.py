"""Validating a workflow config against the schema (``schema.yaml``, :mod:`anomalyflow.params`), before any job runs.

:func:`validate_config` checks every key of every block, fills unset keys with the schema's defaults, checks
each method entry (and each per-dataset or per-category override, merged) against its family's entry, checks
what entries refer to (datasets, methods, teachers), and expands ``{data_root}`` in paths. The first problem
stops the run with one :class:`ConfigError` naming the key's full path. Reading the validated config into one
job's settings is :mod:`anomalyflow.config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from anomalyflow.config import deep_merge, method_params, unknown_message
from anomalyflow.errors import ConfigError
from anomalyflow.params import SCHEMA_PATH, describe_error, error_order, validate_entry, validator_with_defaults
from anomalyflow.readers import load_yaml


def validate_config(config: dict, schema: dict | str | os.PathLike | None = None) -> dict:
    """Validate ``config`` in place against the JSON schema (default: the library's ``schema.yaml``,
    :data:`anomalyflow.params.SCHEMA_PATH`), fill defaults, and return it.

    The first problem found is raised as one :class:`ConfigError` naming the key's full path, with a
    suggestion for misspelt keys. Method entries are validated against their family's schema, and so
    are the per-dataset and per-category overrides, once merged. Each dataset's ``evaluation`` block
    becomes the settings that dataset is evaluated with (see :func:`_inherit_evaluation`).
    """
    import jsonschema

    if not isinstance(schema, dict):
        schema = load_yaml(schema if schema is not None else SCHEMA_PATH)
    _inherit_evaluation(config)
    validator_class = validator_with_defaults(jsonschema.Draft202012Validator)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(config), key=error_order)
    if errors:
        raise ConfigError(describe_error(errors[0]))
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


def _check_references(config: dict, schema: dict, validator_class) -> None:
    methods = config.get("methods", {})
    families = schema.get("$defs", {}).get("families", {})
    for name, entry in methods.items():
        family = entry.get("family")
        if family not in families:
            raise ConfigError(f"config key 'methods.{name}.family': unknown family {family!r}; "
                              f"known: {', '.join(sorted(families))}")
        validate_entry(f"methods.{name}", entry, families[family], schema, validator_class)
    dataset = config.get("dataset")
    datasets = config.get("datasets", {})
    teachers = config.get("teachers", {})
    if dataset is not None and dataset not in datasets:
        raise ConfigError(unknown_message("dataset", dataset, datasets))
    for ds_name, ds in datasets.items():
        for method in ds.get("methods", []):
            if method not in methods:
                raise ConfigError(unknown_message(f"datasets.{ds_name}.methods", method, methods))
        for method, override in (ds.get("method_params") or {}).items():
            _check_override(f"datasets.{ds_name}.method_params.{method}", method, override, config, families,
                            schema, validator_class)
        for category in ds.get("categories", []):
            for method in ds.get("methods", []):
                _check_links(config, ds_name, category, method, families, teachers)
        for category, per_method in (ds.get("category_params") or {}).items():
            if category not in ds.get("categories", []):
                known = ds.get("categories", [])
                raise ConfigError(unknown_message(f"datasets.{ds_name}.category_params", category, known))
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
            raise ConfigError(unknown_message(f"{where}'s members", member, methods))
    base = params.get("base")
    if base is not None and base not in config["datasets"][ds_name].get("methods", []):
        raise ConfigError(f"{where} extends {base!r}, which must be listed in datasets.{ds_name}.methods too")
    if "teacher" in families[params["family"]].get("properties", {}) and params.get("teacher") not in teachers:
        raise ConfigError(unknown_message(f"{where}'s teacher", params.get("teacher"), teachers))


def _check_override(where, method, override, config, families, schema, validator_class) -> None:
    methods = config.get("methods", {})
    if method not in methods:
        raise ConfigError(unknown_message(where.rsplit(".", 1)[0], method, methods))
    merged = deep_merge(methods[method], override)
    if "family" in (override or {}) and override["family"] != methods[method]["family"]:
        raise ConfigError(f"config key '{where}.family': an override cannot change a method's family")
    validate_entry(where, merged, families[merged["family"]], schema, validator_class)


__all__ = ["DATA_ROOT_TOKEN", "expand_data_root", "validate_config"]
