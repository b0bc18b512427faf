# Datasets -> one sample table per category. A synthetic dataset (the demo) is generated first.

from anomalyflow.config import resolve_root
from anomalyflow.data.layouts import category_files
from anomalyflow.data.synth import planned_files


def dataset_root(name):
    return str(resolve_root(config["datasets"][name]["root"]))


def synthetic_files(name, category):
    """The files the synth rule writes for one category (declared outputs, known before rendering)."""
    spec = dict(config["datasets"][name].get("synthetic") or {})
    relative = planned_files(categories=[category], **spec)[category]
    return [f"{dataset_root(name)}/{path}" for path in relative]


def category_inputs(wildcards):
    """Every file that defines a category's data: adding or changing one reruns that category only."""
    spec = ds(wildcards)
    existing = []
    root = dataset_root(wildcards.dataset)
    generated = spec.get("synthetic") is not None
    if not generated or Path(root, wildcards.category).is_dir():
        try:
            existing = category_files(spec["layout"], root, wildcards.category, folder=spec.get("folder"))
        except AnomalyflowError as error:
            _stop(error)
    planned = synthetic_files(wildcards.dataset, wildcards.category) if generated else []
    return sorted(set(planned) | set(map(str, existing)))


# One rule per synthetic category, so that every generated file is a declared output.
for _name, _spec in config["datasets"].items():
    if _spec.get("synthetic") is None:
        continue
    for _category in _spec["categories"]:

        rule:
            name:
                f"synth_{_name}_{_category}"
            output:
                synthetic_files(_name, _category),
            params:
                root=dataset_root(_name),
                category=_category,
                spec=dict(_spec["synthetic"]),
            log:
                f"logs/{_name}/{_category}/synth.log",
            localrule: True
            script:
                "../scripts/synth.py"


rule samples:
    input:
        category_inputs,
    output:
        "results/{dataset}/{category}/samples.csv",
    params:
        layout=lambda wc: ds(wc)["layout"],
        root=lambda wc: dataset_root(wc.dataset),
        validation=lambda wc: ds(wc).get("validation", {}),
        folder=lambda wc: ds(wc).get("folder"),
    log:
        "logs/{dataset}/{category}/samples.log",
    resources:
        **cpu_resources(2000, 10),
    script:
        "../scripts/samples.py"
