# PUAD: a Gaussian on EfficientAD's pooled student features, fused with its score by z-scores.


rule puad_fit:
    input:
        code=code("anomalyflow.puad"),
        samples=samples_csv,
        base=puad_base_files,
    output:
        gaussian="results/{dataset}/{category}/{method}/gaussian.npz",
        model="results/{dataset}/{category}/{method}/model.json",
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
        code=scorer_code("puad"),
        samples=samples_csv,
        base=puad_base_files,
        gaussian="results/{dataset}/{category}/{method}/gaussian.npz",
        model="results/{dataset}/{category}/{method}/model.json",
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
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
        "../scripts/score.py"
