"""Reading the small text files the library and the workflow use: YAML (the config) and JSON (model metadata,
statistics), each with one clear error naming the file when it is missing or broken."""

from __future__ import annotations

import json
import os

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
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


__all__ = ["load_json", "load_yaml"]
