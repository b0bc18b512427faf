# EfficientAD: Ψ statistics -> teacher distillation (once per teacher and size) -> per-category
# student/autoencoder training -> validation quantiles -> batched scoring.

from anomalyflow.config import teacher_params
from anomalyflow.data.clutter import planned_clutter_files
from anomalyflow.efficientad.stages import penalty_enabled


def teacher(name):
    try:
        return teacher_params(config, name)
    except AnomalyflowError as error:
        _stop(error)


def clutter_root(name):
    return f"resources/imagenet/{name}"


def teacher_images(name):
    """The folder of ImageNet(-like) images a teacher is distilled from (None when it has none)."""
    spec = teacher(name)
    if spec["synthetic"] is not None:
        return f"{clutter_root(name)}/images"
    return spec["imagenet_root"]


def teacher_image_inputs(name):
    """Declared inputs for those images: the generated files, or the ImageNet folder itself."""
    spec = teacher(name)
    if spec["synthetic"] is not None:
        return [f"{clutter_root(name)}/{p}" for p in planned_clutter_files(**spec["synthetic"])]
    if not spec["imagenet_root"]:
        _stop(f"teachers.{name}: distilling a teacher needs imagenet_root (an ImageNet-style folder) or "
              f"existing files under teachers.{name}.files")
    if not Path(spec["imagenet_root"]).is_dir():
        _stop(f"teachers.{name}.imagenet_root: {spec['imagenet_root']} is not a folder")
    return [spec["imagenet_root"]]


def teacher_file(name, size):
    given = teacher(name)["files"].get(size)
    return given if given else f"results/teacher/{name}/{size}/teacher.pt"


def teacher_weights(name):
    spec = teacher(name)
    return weights_file(spec["backbone"], spec["weights"])


# Clutter images standing in for ImageNet, for teachers with `synthetic:` (the demo).
for _name, _spec in config.get("teachers", {}).items():
    if _spec.get("synthetic") is None:
        continue

    rule:
        name:
            f"clutter_{_name}"
        output:
            [f"{clutter_root(_name)}/{p}" for p in planned_clutter_files(**_spec["synthetic"])],
        params:
            root=clutter_root(_name),
            spec=dict(_spec["synthetic"]),
        log:
            f"logs/imagenet/{_name}/clutter.log",
        localrule: True
        script:
            "../scripts/clutter.py"


rule imagenet_stats:
    input:
        images=lambda wc: teacher_image_inputs(wc.teacher),
        weights=lambda wc: teacher_weights(wc.teacher),
    output:
        "results/imagenet/{teacher}/{backbone}_stats.pt",
    params:
        teacher=lambda wc: teacher(wc.teacher),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/imagenet/{teacher}/{backbone}_stats.log",
    benchmark:
        "benchmarks/imagenet/{teacher}/{backbone}_stats.tsv"
    threads: config["threads"]
    resources:
        **gpu_resources(32000, 120),
    script:
        "../scripts/imagenet_stats.py"


rule distill_teacher:
    input:
        images=lambda wc: teacher_image_inputs(wc.teacher),
        stats=lambda wc: f"results/imagenet/{wc.teacher}/{teacher(wc.teacher)['backbone']}_stats.pt",
        weights=lambda wc: teacher_weights(wc.teacher),
    output:
        "results/teacher/{teacher}/{size}/teacher.pt",
    wildcard_constraints:
        size="s|m",
    params:
        teacher=lambda wc: teacher(wc.teacher),
        images=lambda wc: teacher_images(wc.teacher),
    log:
        "logs/teacher/{teacher}/{size}/distill.log",
    benchmark:
        "benchmarks/teacher/{teacher}/{size}/distill.tsv"
    threads: config["threads"]
    resources:
        **gpu_resources(32000, 24 * 60),
    script:
        "../scripts/distill_teacher.py"


def efficientad_teacher_input(wildcards):
    params = params_of(wildcards)
    if params.get("pretrained"):
        return []
    return [teacher_file(params["teacher"], params["size"])]


def efficientad_penalty_input(wildcards):
    params = params_of(wildcards)
    if params.get("pretrained") or not penalty_enabled(params, teacher(params["teacher"])):
        return []
    return teacher_image_inputs(params["teacher"])


def efficientad_penalty_folder(wildcards):
    params = params_of(wildcards)
    if params.get("pretrained") or not penalty_enabled(params, teacher(params["teacher"])):
        return None
    return teacher_images(params["teacher"])


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
    log:
        "logs/{dataset}/{category}/{method}/train.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/train.tsv"
    threads: config["threads"]
    resources:
        **gpu_resources(16000, 12 * 60),
    script:
        "../scripts/train_efficientad.py"


rule efficientad_quantiles:
    input:
        EFFICIENTAD_MODEL,
        samples=samples_csv,
    output:
        "results/{dataset}/{category}/{method}/quantiles.json",
    wildcard_constraints:
        method=family_regex("efficientad"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/quantiles.log",
    threads: config["threads"]
    resources:
        **gpu_resources(16000, 30),
    script:
        "../scripts/efficientad_quantiles.py"


rule efficientad_score:
    input:
        EFFICIENTAD_MODEL,
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
    threads: config["threads"]
    resources:
        **gpu_resources(16000, 30),
    script:
        "../scripts/score.py"
