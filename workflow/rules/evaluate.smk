# Metrics per category x method, then the dataset table results/{dataset}/all.csv.


def maps_of(wildcards):
    """The anomaly maps evaluated for a method (map-less methods borrow their base method's maps)."""
    return f"results/{wildcards.dataset}/{wildcards.category}/{wildcards.method}/maps.npz"


def defects_config(wildcards):
    spec = ds(wildcards)
    if spec["layout"] not in ("mvtec_loco", "loco"):
        return []
    return [f"{dataset_root(wildcards.dataset)}/{wildcards.category}/defects_config.json"]


rule evaluate:
    input:
        samples=samples_csv,
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps=maps_of,
        defects=defects_config,
    output:
        "results/{dataset}/{category}/{method}/metrics.csv",
    params:
        evaluation=lambda wc: evaluation_params(config, wc.dataset),
    log:
        "logs/{dataset}/{category}/{method}/evaluate.log",
    resources:
        **cpu_resources(8000, 30),
    script:
        "../scripts/evaluate.py"


def all_metrics(wildcards):
    spec = ds(wildcards)
    return expand(
        "results/{dataset}/{category}/{method}/metrics.csv",
        dataset=wildcards.dataset,
        category=spec["categories"],
        method=spec["methods"],
    )


rule aggregate:
    input:
        all_metrics,
    output:
        "results/{dataset}/all.csv",
    log:
        "logs/{dataset}/aggregate.log",
    localrule: True
    script:
        "../scripts/aggregate.py"
