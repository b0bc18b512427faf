"""A method's parameters inside the library: built and checked in one place, with the schema's defaults.

``schema.yaml`` (beside this module) is the one source of defaults: the workflow validates its config against
it before any job runs (:func:`anomalyflow.validation.validate_config`), and every library entry point that takes a
method's parameters builds them here, from the same schema entry (``$defs/families/<family>``, or
``$defs/teacher`` for an EfficientAD teacher):

- a key the entry does not know stops with one :class:`ConfigError` naming it and the nearest known key
  (``patchcore: parameter 'coreset_fractoin' is not known; did you mean 'coreset_fraction'?``), instead of the
  method silently running with that parameter's default;
- a value out of range stops the same way, checked against the schema (``pni: config key 'pni.score': ...``);
- unset keys, and keys set to null ("the default"), take the schema's default. The keys a method entry
  inherits from the config's top level (``weights``, ``seed``: null in the family schema) take, outside the
  workflow, :data:`STANDALONE`.

The result is a :class:`Params`: read-only, by key (``p["lr"]``) or attribute (``p.lr``); lists become tuples.
References to other config entries (a refined PNI's ``base``, an ensemble's ``members``) are accepted and kept;
only ``family`` is dropped. ``tests/test_config_blocks.py`` checks each family's keys against its entry point.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from anomalyflow.errors import ConfigError
from anomalyflow.readers import load_yaml

#: The workflow's config schema: keys, checks and defaults of every block (README, "Configuration").
SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

#: What an inherited key (null in a method entry: "the dataset's, else the top-level value") is when a library
#: entry point is called without a workflow config: random-init backbones (nothing to download), and the
#: top-level ``seed`` default.
STANDALONE = {"weights": "none", "seed": None}


@functools.cache
def schema() -> dict:
    """``schema.yaml``, parsed once (callers must not change it; :func:`family_schema` copies)."""
    return load_yaml(SCHEMA_PATH)


def family_schema(family: str) -> dict:
    """The schema of a method family's config entry (``$defs/families/<family>``); :class:`ConfigError` if unknown."""
    families = schema()["$defs"]["families"]
    if family not in families:
        raise ConfigError(f"unknown method family {family!r}; known: {', '.join(families)}")
    return copy.deepcopy(families[family])


class Params(Mapping):
    """A method's (or teacher's) parameters, read-only: ``p["lr"]`` or ``p.lr``; ``dict(p)`` for a plain copy.

    Built by :func:`family_params` / :func:`teacher_settings` only; ``owner`` names what they belong to
    (``patchcore``, ``teacher``) in error messages.
    """

    __slots__ = ("_owner", "_values")

    def __init__(self, owner: str, values: Mapping[str, Any]):
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_values", {key: _frozen(value) for key, value in values.items()})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{self._owner} has no parameter {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{self._owner} parameters are read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._owner!r}, {self._values!r})"

    def as_json(self) -> dict[str, Any]:
        """A plain dict of plain values (tuples as lists), for ``model.json``."""
        return {key: _plain(value) for key, value in self._values.items()}


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, Mapping) and not isinstance(value, Params):
        return Params("nested", value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def family_params(family: str, params: Mapping[str, Any] | None) -> Params:
    """The parameters of a method of ``family`` from its (merged) config entry ``params``, checked, with defaults.

    Raises :class:`ConfigError` for an unknown family, an unknown key or a value the schema refuses. A
    :class:`Params` of this family is returned as it is (built once, passed on).
    """
    if isinstance(params, Params) and params._owner == family:
        return params
    values = _build(family, family_schema(family), params)
    values.pop("family", None)
    return Params(family, values)


def teacher_settings(params: Mapping[str, Any] | None) -> Params:
    """An EfficientAD teacher's settings (``teachers.<name>``, ``$defs/teacher``), checked, with defaults."""
    if isinstance(params, Params) and params._owner == "teacher":
        return params
    return Params("teacher", _build("teacher", copy.deepcopy(schema()["$defs"]["teacher"]), params))


def _build(owner: str, entry_schema: dict, params: Mapping[str, Any] | None) -> dict[str, Any]:
    given = {key: _plain(value) for key, value in (params or {}).items()}  # a Params' tuples as the schema's arrays
    check_known(given, entry_schema.get("properties", {}), what=owner)
    # A library call gives what it computes with; the references the workflow requires (a refined PNI's base,
    # an ensemble's members) are resolved to folders before it, so they are not required here.
    entry_schema.pop("required", None)
    values = {key: value for key, value in given.items() if value is not None}
    values = check_block(owner, values, entry_schema, schema())
    top_level = schema()["properties"]
    for key, fallback in STANDALONE.items():
        if key in values and values[key] is None:
            values[key] = fallback if fallback is not None else copy.deepcopy(top_level[key]["default"])
    return values


# --- validating a block against the schema (the workflow's config and the library's parameters alike) ----------


def error_order(error) -> tuple:
    # Report the shallowest problem first: a misspelt section name before the keys inside it.
    return (len(error.absolute_path), [str(p) for p in error.absolute_path])


def validator_with_defaults(validator_class):
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


def describe_error(error) -> str:
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


def validate_entry(where: str, entry: dict, family_schema: dict, schema: dict, validator_class) -> None:
    sub = dict(family_schema)
    sub.setdefault("$defs", schema.get("$defs", {}))
    errors = sorted(validator_class(sub).iter_errors(entry), key=error_order)
    if errors:
        message = describe_error(errors[0]).replace("config key '", f"config key '{where}.", 1)
        raise ConfigError(message.replace(f"{where}.(top level)", where))


def check_block(where: str, values: Mapping, block_schema: dict, schema: dict) -> dict:
    """A copy of ``values`` validated against ``block_schema`` (its ``$ref``s resolved in ``schema``), the block's
    defaults filled in; raises :class:`ConfigError` for the first problem, naming ``<where>.<key>``."""
    import jsonschema

    entry = copy.deepcopy(dict(values))
    validate_entry(where, entry, block_schema, schema, validator_with_defaults(jsonschema.Draft202012Validator))
    return entry


def check_known(params: Mapping[str, Any] | None, known: Iterable[str], *, what: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``params`` (sorted) that is not in ``known``.

    ``what`` names the owner in the message (``"patchcore"``, ``"puad fusion_weights"``), e.g.
    ``patchcore: parameter 'coreset_fractoin' is not known; did you mean 'coreset_fraction'?``.
    """
    known = sorted(known)
    unknown = sorted(set(params or {}) - set(known), key=str)
    if not unknown:
        return
    key = str(unknown[0])
    hint = difflib.get_close_matches(key, known, n=1)
    suggestion = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(known)}"
    raise ConfigError(f"{what}: parameter '{key}' is not known; {suggestion}")


__all__ = ["SCHEMA_PATH", "STANDALONE", "Params", "check_block", "check_known", "describe_error", "error_order",
           "family_params", "family_schema", "schema", "teacher_settings", "validate_entry", "validator_with_defaults"]
