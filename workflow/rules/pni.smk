# PNI: coresets + position histograms -> neighbourhood MLP -> gated scoring; the refinement network.


rule pni_fit_memory:
    input:
        samples=samples_csv,
        weights=backbone_weights,
        code=code("anomalyflow.pni.stages"),
    output:
        model_files("pni", "fit_memory"),
        # Train features for the MLP stage only: float16 [N, h, w, E], gigabytes on real data.
        features=temp("results/{dataset}/{category}/{method}/train_features.npy"),
    wildcard_constraints:
        method=family_regex("pni"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/pni_fit_memory.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/pni_fit_memory.tsv"
    threads: threads_of
    resources:
        **gpu_resources(64000, 120),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/pni_fit_memory.py"


rule pni_fit_mlp:
    input:
        model_files("pni", "fit_memory"),
        samples=samples_csv,
        features="results/{dataset}/{category}/{method}/train_features.npy",
        code=code("anomalyflow.pni.stages"),
    output:
        model_files("pni", "fit_mlp"),
    wildcard_constraints:
        method=family_regex("pni"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/pni_fit_mlp.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/pni_fit_mlp.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 240),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/pni_fit_mlp.py"


rule pni_score:
    input:
        model_files("pni"),
        samples=samples_csv,
        code=code("anomalyflow.scoring", "anomalyflow.pni.model"),
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
    wildcard_constraints:
        method=family_regex("pni"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/pni_score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/pni_score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/pni_score.py"


rule pni_refined_fit:
    input:
        samples=samples_csv,
        base=base_model_files("pni"),
        weights=backbone_weights,
        code=code("anomalyflow.pni.refine"),
    output:
        model_files("pni_refined", "fit"),
    wildcard_constraints:
        method=family_regex("pni_refined"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/pni_refined_fit.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/pni_refined_fit.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 12 * 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/pni_refined_fit.py"


rule pni_refined_score:
    input:
        model_files("pni_refined"),
        samples=samples_csv,
        base=base_model_files("pni"),
        code=code("anomalyflow.scoring", "anomalyflow.pni.refined"),
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
    wildcard_constraints:
        method=family_regex("pni_refined"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/pni_refined_score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/pni_refined_score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/pni_refined_score.py"
