# PatchCore baseline: memory bank of locally aware patch features -> kNN anomaly maps.


rule patchcore_fit:
    input:
        code=code("anomalyflow.patchcore"),
        samples=samples_csv,
        weights=backbone_weights,
    output:
        model_files("patchcore", "fit"),
    wildcard_constraints:
        method=family_regex("patchcore"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/patchcore_fit.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/patchcore_fit.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/patchcore_fit.py"


rule patchcore_score:
    input:
        model_files("patchcore"),
        code=code("anomalyflow.scoring", "anomalyflow.patchcore"),
        samples=samples_csv,
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
    wildcard_constraints:
        method=family_regex("patchcore"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/patchcore_score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/patchcore_score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/patchcore_score.py"
