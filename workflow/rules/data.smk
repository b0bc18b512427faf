# Datasets -> one sample table per category. A synthetic dataset (the demo) is generated first.


# One rule per synthetic category, so that every generated file is a declared output.
for _name, _spec in config["datasets"].items():
    if _spec.get("synthetic") is None:
        continue
    for _category in _spec["categories"]:

        rule:
            name:
                f"data_synth_{_name}_{_category}"
            input:
                code=code("anomalyflow.data.synth"),
            output:
                synthetic_files(_name, _category),
            params:
                category=_category,
                spec=dict(_spec["synthetic"]),
            log:
                f"logs/{_name}/{_category}/data_synth.log",
            localrule: True
            conda:
                "../../envs/cpu.yaml"
            script:
                "../scripts/data_synth.py"


# The first job of a category: its sample table, after decoding every image and mask in it, so a bad
# file stops that category in its first minute. The data files are tracked by their fingerprint (a
# params trigger), not listed as inputs: Snakemake would print hundreds of paths for every such job.
rule data_samples:
    input:
        category_inputs,
        code=layout_code,
    output:
        "results/{dataset}/{category}/samples.csv",
    params:
        files=category_fingerprint,
        layout=lambda wc: ds(wc)["layout"],
        root=lambda wc: dataset_root(wc.dataset),
        validation=lambda wc: ds(wc)["validation"],
        folder=lambda wc: ds(wc)["folder"],
    log:
        "logs/{dataset}/{category}/data_samples.log",
    threads: threads_of
    resources:
        **cpu_resources(2000, 10),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/data_samples.py"
