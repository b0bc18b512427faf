# Config validation and the input/params functions every rule file uses. Logic lives in the library;
# this file only translates the config into file names.

import sys
from pathlib import Path

from anomalyflow.config import (
    dataset_config,
    evaluation_params,
    method_params,
    methods_of_family,
    validate_config,
)
from anomalyflow.errors import AnomalyflowError


def _stop(error):
    # One line, no traceback: the same contract as the anomalyflow CLI.
    print(f"anomalyflow: error: {error}", file=sys.stderr)
    sys.exit(1)


try:
    validate_config(config, workflow.source_path("../../config/schema.yaml"))
except AnomalyflowError as error:
    _stop(error)

DATASETS = list(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS) or "NONE",
    category=r"[^/]+",


def family_regex(family):
    """A wildcard constraint matching the method names of one family (e.g. all patchcore variants)."""
    names = methods_of_family(config, family)
    return "|".join(names) if names else "NO_METHOD_OF_THIS_FAMILY"


def ds(wildcards):
    return dataset_config(config, wildcards.dataset)


def params_of(wildcards):
    """The merged parameters of {method} for {dataset}/{category}: the params trigger sees per-category edits."""
    try:
        return method_params(config, wildcards.dataset, wildcards.category, wildcards.method)
    except AnomalyflowError as error:
        _stop(error)


def category_dir(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}"


def method_dir(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}/{wildcards.method}"


def samples_csv(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}/samples.csv"


def weights_file(backbone, weights):
    """The cached weights file a rule needs as input ('imagenet' -> resources/weights), or none."""
    if weights == "imagenet":
        return [f"resources/weights/{backbone}.pth"]
    if weights in (None, "none"):
        return []
    return [weights]


def resolved_weights(weights, backbone):
    """What the library loads: the cached file for 'imagenet', else the value as given."""
    return f"resources/weights/{backbone}.pth" if weights == "imagenet" else weights


def gpu_resources(mem_mb=16000, runtime=60):
    """Cluster resources of a GPU rule; scaled by config resources.mem_scale / runtime_scale."""
    scale = config.get("resources", {})
    return dict(
        mem_mb=int(mem_mb * scale.get("mem_scale", 1.0)),
        runtime=int(runtime * scale.get("runtime_scale", 1.0)),
        gpu=1,
    )


def cpu_resources(mem_mb=4000, runtime=30):
    scale = config.get("resources", {})
    return dict(
        mem_mb=int(mem_mb * scale.get("mem_scale", 1.0)),
        runtime=int(runtime * scale.get("runtime_scale", 1.0)),
    )
