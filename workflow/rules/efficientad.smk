# EfficientAD per category: student/autoencoder training (or an imported PUAD folder) -> validation
# quantiles -> batched scoring. Its teacher comes from teacher.smk.


EFFICIENTAD_MODEL = multiext(
    "results/{dataset}/{category}/{method}/",
    "model.json",
    "student.pt",
    "autoencoder.pt",
    "teacher.pt",
    "teacher_stats.pt",
)


rule efficientad_fit:
    input:
        code=code("anomalyflow.efficientad.stages"),
        samples=samples_csv,
        teacher=efficientad_teacher_input,
        penalty=efficientad_penalty_input,
    output:
        EFFICIENTAD_MODEL,
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
        EFFICIENTAD_MODEL,
        code=code("anomalyflow.efficientad.stages"),
        samples=samples_csv,
    output:
        "results/{dataset}/{category}/{method}/quantiles.json",
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
        EFFICIENTAD_MODEL,
        code=scorer_code("efficientad"),
        samples=samples_csv,
        model="results/{dataset}/{category}/{method}/model.json",
        quantiles="results/{dataset}/{category}/{method}/quantiles.json",
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
        "../scripts/score.py"
