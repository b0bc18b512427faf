# EfficientAD per category: student/autoencoder training (or an imported PUAD folder) -> validation
# quantiles -> batched scoring. Its teacher comes from teacher.smk.


rule efficientad_fit:
    input:
        code=code("anomalyflow.efficientad.stages"),
        samples=samples_csv,
        teacher=efficientad_teacher_input,
        penalty=efficientad_penalty_input,
    output:
        model_files("efficientad", "fit"),
    wildcard_constraints:
        method=family_regex("efficientad"),
    params:
        method=params_of,
        penalty=efficientad_penalty_folder,
        teacher=efficientad_teacher_description,
    log:
        "logs/{dataset}/{category}/{method}/efficientad_fit.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/efficientad_fit.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 12 * 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/efficientad_fit.py"


rule efficientad_fit_quantiles:
    input:
        model_files("efficientad", "fit"),
        code=code("anomalyflow.efficientad.stages"),
        samples=samples_csv,
    output:
        model_files("efficientad", "fit_quantiles"),
    wildcard_constraints:
        method=family_regex("efficientad"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/efficientad_fit_quantiles.log",
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/efficientad_fit_quantiles.py"


rule efficientad_score:
    input:
        model_files("efficientad"),
        code=code("anomalyflow.scoring", "anomalyflow.efficientad.model"),
        samples=samples_csv,
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
    wildcard_constraints:
        method=family_regex("efficientad"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/efficientad_score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/efficientad_score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/efficientad_score.py"
