# PNI: coresets + position histograms -> neighbourhood MLP -> gated scoring; the refinement network.


rule pni_fit_memory:
    input:
        samples=samples_csv,
        weights=backbone_weights,
        code=code("anomalyflow.pni.stages"),
    output:
        multiext("results/{dataset}/{category}/{method}/", *PNI_MEMORY),
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
        multiext("results/{dataset}/{category}/{method}/", *PNI_MEMORY),
        samples=samples_csv,
        features="results/{dataset}/{category}/{method}/train_features.npy",
        code=code("anomalyflow.pni.stages"),
    output:
        multiext("results/{dataset}/{category}/{method}/", "neighbourhood.pt", "neighbourhood.json", "model.json"),
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
        multiext("results/{dataset}/{category}/{method}/", *PNI_MODEL),
        samples=samples_csv,
        model="results/{dataset}/{category}/{method}/model.json",
        code=scorer_code("pni"),
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
        "../scripts/score.py"


rule pni_refined_fit:
    input:
        samples=samples_csv,
        base=pni_base_files,
        weights=refiner_weights,
        code=code("anomalyflow.pni.refine"),
    output:
        multiext("results/{dataset}/{category}/{method}/", "refiner.pt", "refiner.json", "model.json"),
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
        multiext("results/{dataset}/{category}/{method}/", "refiner.pt", "refiner.json"),
        samples=samples_csv,
        base=pni_base_files,
        model="results/{dataset}/{category}/{method}/model.json",
        code=scorer_code("pni_refined"),
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
        "../scripts/score.py"
