"""Reading a validated workflow config into one job's settings (validation itself: :mod:`anomalyflow.validation`).

A method's parameters for one (dataset, category) are merged, later entries winning, from:

1. the method's entry under ``methods:`` (with the schema's defaults filled in),
2. ``datasets.<dataset>.method_params.<method>``,
3. ``datasets.<dataset>.category_params.<category>.<method>``.

The workflow hands the merged dict to each rule as ``params`` (:func:`job_params`), so changing one category's
entry changes only that category's jobs' params and Snakemake reruns only those. Every job imports this module
(its run options, :mod:`anomalyflow.jobs`), so it holds nothing but this resolution.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anomalyflow.errors import ConfigError


def deep_merge(base: Mapping, update: Mapping | None) -> dict:
    """Recursive dict merge; ``update`` wins; lists and scalars are replaced, not merged."""
    merged = copy.deepcopy(dict(base))
    for key, value in (update or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def unknown_message(where: str, value: Any, known) -> str:
    known = [str(k) for k in known]
    hint = difflib.get_close_matches(str(value), known, n=1)
    suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(known) or '(none)'}"
    return f"config key '{where}': {value!r} is not defined{suggestion}"


def dataset_config(config: dict, dataset: str) -> dict:
    try:
        return config["datasets"][dataset]
    except KeyError:
        raise ConfigError(unknown_message("datasets", dataset, config.get("datasets", {}))) from None


def method_params(config: dict, dataset: str, category: str, method: str) -> dict:
    """The merged parameters of ``method`` for one category of one dataset (see the module doc)."""
    methods = config.get("methods", {})
    if method not in methods:
        raise ConfigError(unknown_message("methods", method, methods))
    ds = dataset_config(config, dataset)
    merged = deep_merge(methods[method], (ds.get("method_params") or {}).get(method))
    merged = deep_merge(merged, ((ds.get("category_params") or {}).get(category) or {}).get(method))
    if merged.get("weights") is None:
        # null in a method entry (the schema default) means "the dataset's, else the top-level value".
        merged["weights"] = ds.get("weights") if ds.get("weights") is not None else config.get("weights")
    if merged.get("seed") is None:
        merged["seed"] = config.get("seed")
    return merged


#: Parameters that change how a job runs but not what it computes: training resumes bit-exactly from a
#: checkpoint at any interval. The workflow leaves them out of its rules' ``params`` (Snakemake's rerun
#: trigger), so editing one reruns nothing; the job scripts receive them as run options (:mod:`anomalyflow.jobs`).
RUN_ONLY_KEYS = ("checkpoint_every",)


def result_params(params: Mapping) -> dict:
    """``params`` without the :data:`RUN_ONLY_KEYS`: what a job's results depend on."""
    return {key: value for key, value in params.items() if key not in RUN_ONLY_KEYS}


WEIGHTS_DIR = "resources/weights"


def resolve_weights(weights: str | os.PathLike | None, backbone: str, weights_dir: str = WEIGHTS_DIR) -> str:
    """What a job loads: the workflow's cached file for ``imagenet``, ``none``, or the given path."""
    if weights in (None, "none"):
        return "none"
    if weights == "imagenet":
        return f"{weights_dir}/{backbone}.pth"
    return str(weights)


#: The backbone of the families whose ``weights`` are not those of a ``backbone`` parameter: the refined PNI's
#: refinement network is a DenseNet-161 (docs/methods.md C9).
FIXED_BACKBONES = {"pni_refined": "densenet161"}


def job_params(config: dict, dataset: str, category: str, method: str) -> dict:
    """What a method's jobs get as parameters (the rules' ``params``, their rerun trigger): the merged
    parameters (:func:`method_params`) without the :data:`RUN_ONLY_KEYS`, and ``weights: imagenet`` as the file
    the workflow fetches once for the family's backbone (``resources/weights/<backbone>.pth``, rule
    ``weights_download``), so that no job downloads anything."""
    params = result_params(method_params(config, dataset, category, method))
    backbone = FIXED_BACKBONES.get(params["family"], params.get("backbone"))
    if backbone is not None:
        params["weights"] = resolve_weights(params["weights"], backbone)
    return params


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
        raise ConfigError(unknown_message("teachers", name, teachers))
    params = copy.deepcopy(teachers[name])
    if params.get("weights") is None:
        params["weights"] = config.get("weights")
    return params


#: Keys of the ``evaluation`` block that place the operating points (:mod:`anomalyflow.thresholds`), not the metrics:
#: kept out of :func:`evaluation_params`, so that changing them reruns no metrics job.
OPERATING_POINT_KEYS = ("false_alarm_rates",)


def _evaluation_block(config: dict, dataset: str) -> dict:
    return deep_merge(config.get("evaluation", {}), dataset_config(config, dataset).get("evaluation"))


def evaluation_params(config: dict, dataset: str) -> dict:
    """The metrics' settings of ``dataset`` (``evaluate_category``'s keywords): its ``evaluation`` block over the
    top-level one, without :data:`OPERATING_POINT_KEYS`."""
    block = _evaluation_block(config, dataset)
    return {key: value for key, value in block.items() if key not in OPERATING_POINT_KEYS}


def false_alarm_rates(config: dict, dataset: str) -> list[float]:
    """The validation false-alarm rates of ``dataset``'s operating points (a validated config has them)."""
    return list(_evaluation_block(config, dataset)["false_alarm_rates"])


def methods_of_family(config: dict, family: str) -> list[str]:
    return [name for name, entry in config.get("methods", {}).items() if entry.get("family") == family]


def resolve_root(root: str | os.PathLike, base: str | os.PathLike | None = None) -> Path:
    """Expand ``~`` and environment variables; relative roots are taken from ``base`` (the workdir)."""
    path = Path(os.path.expandvars(os.path.expanduser(str(root))))
    return path if path.is_absolute() or base is None else Path(base) / path


__all__ = ["FIXED_BACKBONES", "OPERATING_POINT_KEYS", "RUN_ONLY_KEYS", "WEIGHTS_DIR", "dataset_config", "deep_merge",
           "evaluation_params", "false_alarm_rates", "job_params", "job_threads", "method_params", "methods_of_family",
           "resolve_root", "resolve_weights", "result_params", "teacher_params", "unknown_message"]
