# PUAD: a Gaussian on EfficientAD's pooled student features, fused with its score (and its logical map with
# EfficientAD's map) by validation z-scores.


rule puad_fit:
    input:
        code=code("anomalyflow.puad"),
        samples=samples_csv,
        base=base_model_files("efficientad"),
    output:
        model_files("puad", "fit"),
    wildcard_constraints:
        method=family_regex("puad"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/puad_fit.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/puad_fit.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/puad_fit.py"


rule puad_score:
    input:
        model_files("puad"),
        code=code("anomalyflow.scoring", "anomalyflow.puad"),
        samples=samples_csv,
        base=base_model_files("efficientad"),
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
    wildcard_constraints:
        method=family_regex("puad"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/puad_score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/puad_score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/puad_score.py"
