# EfficientAD's teachers, once per teacher and size (shared by every category and dataset): Ψ statistics ->
# distillation, or a file fetched once. A teacher given as a file needs none of these.


# Clutter images standing in for ImageNet, for teachers with `synthetic:` (the demo).
for _name, _spec in config.get("teachers", {}).items():
    if _spec.get("synthetic") is None:
        continue

    rule:
        name:
            f"teacher_clutter_{_name}"
        input:
            code=code("anomalyflow.data.clutter"),
        output:
            [f"{clutter_root(_name)}/{p}" for p in planned_clutter_files(**_spec["synthetic"])],
        params:
            spec=dict(_spec["synthetic"]),
        log:
            f"logs/teacher/{_name}/teacher_clutter.log",
        localrule: True
        conda:
            "../../envs/cpu.yaml"
        script:
            "../scripts/teacher_clutter.py"


rule teacher_stats:
    input:
        code=code("anomalyflow.efficientad.imagenet_stats"),
        images=lambda wc: teacher_image_inputs(wc.teacher),
        weights=lambda wc: teacher_weights(wc.teacher),
    output:
        "results/imagenet/{teacher}/{backbone}_stats.pt",
    params:
        teacher=lambda wc: teacher_params_of(wc.teacher),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/teacher/{teacher}/{backbone}/teacher_stats.log",
    benchmark:
        "benchmarks/teacher/{teacher}/{backbone}/teacher_stats.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 120),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/teacher_stats.py"


rule teacher_distill:
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
        teacher=lambda wc: teacher_params_of(wc.teacher),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/teacher/{teacher}/{size}/teacher_distill.log",
    benchmark:
        "benchmarks/teacher/{teacher}/{size}/teacher_distill.tsv"
    threads: threads_of
    resources:
        **gpu_resources(32000, 24 * 60),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../scripts/teacher_distill.py"


rule teacher_fetch:
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
        "logs/teacher/{teacher}/{size}/teacher_fetch.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/teacher_fetch.py"
