# EfficientAD: Ψ statistics -> teacher distillation (once per teacher and size) -> per-category
# student/autoencoder training -> validation quantiles -> batched scoring.


# Clutter images standing in for ImageNet, for teachers with `synthetic:` (the demo).
for _name, _spec in config.get("teachers", {}).items():
    if _spec.get("synthetic") is None:
        continue

    rule:
        name:
            f"clutter_{_name}"
        input:
            code=code("anomalyflow.data.clutter"),
        output:
            [f"{clutter_root(_name)}/{p}" for p in planned_clutter_files(**_spec["synthetic"])],
        params:
            spec=dict(_spec["synthetic"]),
        log:
            f"logs/imagenet/{_name}/clutter.log",
        localrule: True
        conda:
            "../../envs/cpu.yaml"
        script:
            "../scripts/clutter.py"


rule imagenet_stats:
    input:
        code=code("anomalyflow.efficientad.imagenet_stats"),
        images=lambda wc: teacher_image_inputs(wc.teacher),
        weights=lambda wc: teacher_weights(wc.teacher),
    output:
        "results/imagenet/{teacher}/{backbone}_stats.pt",
    params:
        teacher=lambda wc: distillation_params(teacher(wc.teacher)),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/imagenet/{teacher}/{backbone}_stats.log",
    benchmark:
        "benchmarks/imagenet/{teacher}/{backbone}_stats.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 120),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/imagenet_stats.py"


rule distill_teacher:
    input:
        code=code("anomalyflow.efficientad.distill"),
        images=lambda wc: teacher_image_inputs(wc.teacher),
        stats=lambda wc: f"results/imagenet/{wc.teacher}/{teacher(wc.teacher)['backbone']}_stats.pt",
        weights=lambda wc: teacher_weights(wc.teacher),
    output:
        "results/teacher/{teacher}/{size}/teacher.pt",
    wildcard_constraints:
        size="s|m",
    params:
        teacher=lambda wc: distillation_params(teacher(wc.teacher)),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/teacher/{teacher}/{size}/distill.log",
    benchmark:
        "benchmarks/teacher/{teacher}/{size}/distill.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 24 * 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/distill_teacher.py"


rule fetch_teacher:
    # Existing teacher files named by URL and SHA-256 (teachers.<name>.download.<size>), fetched on the
    # machine that runs Snakemake: cluster nodes may have no internet.
    input:
        code=code("anomalyflow.fetch"),
    output:
        "resources/teachers/{teacher}/{size}.pth",
    wildcard_constraints:
        size="s|m",
    params:
        download=lambda wc: teacher(wc.teacher)["download"][wc.size],
    log:
        "logs/teacher/{teacher}/{size}/fetch.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/fetch_teacher.py"


EFFICIENTAD_MODEL = multiext(
    "results/{dataset}/{category}/{method}/",
    "model.json",
    "student.pt",
    "autoencoder.pt",
    "teacher.pt",
    "teacher_stats.pt",
)


rule train_efficientad:
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
        "logs/{dataset}/{category}/{method}/train.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/train.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 12 * 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/train_efficientad.py"


rule efficientad_quantiles:
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
        "logs/{dataset}/{category}/{method}/quantiles.log",
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/efficientad_quantiles.py"


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
        "logs/{dataset}/{category}/{method}/score.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/score.tsv"
    threads: threads_of
    resources:
        **gpu_resources(16000, 30),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/score.py"
