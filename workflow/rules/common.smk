# Config validation and the input/params functions every rule file uses. Logic lives in the library;
# this file only translates the config into file names.

import os
import sys
from pathlib import Path

from anomalyflow.config import (
    dataset_config,
    evaluation_params,
    false_alarm_rates,
    job_params,
    job_threads,
    method_params,
    methods_of_family,
    resolve_root,
    teacher_params,
)
from anomalyflow.validation import validate_config
from anomalyflow.results_table import method_provenance
from anomalyflow.data.clutter import planned_clutter_files
from anomalyflow.data.layouts import category_files, files_fingerprint, layout_module_name
from anomalyflow.data.public import require_dataset
from anomalyflow.data.synth import planned_files
from anomalyflow.efficientad.teachers import imagenet_images, penalty_enabled, require_teacher, teacher_job_params
from anomalyflow.errors import AnomalyflowError
from anomalyflow.export.writer import EXPORTABLE
from anomalyflow.provenance import module_sources
from anomalyflow.model_folder import FOLDERS


def _stop(error):
    # One line, no traceback: the same contract as the anomalyflow CLI.
    print(f"anomalyflow: error: {error}", file=sys.stderr)
    sys.exit(1)


try:
    validate_config(config)  # against the library's schema.yaml: the one source of every default
except AnomalyflowError as error:
    _stop(error)

DATASETS = list(config["datasets"])
# Relative to the working directory, as Snakemake records input paths as given: a run copied or moved
# elsewhere keeps the same set of inputs instead of rerunning every job ("set of input files changed").
LIBRARY = Path(os.path.relpath(Path(workflow.basedir, "src", "anomalyflow")))


def code(*modules):
    """The library source files a rule's job runs: inputs, so editing them reruns exactly those jobs.

    Found from import statements (anomalyflow.provenance); a module the library loads by name is named
    here by the rule, from the library's own table (layout_code)."""
    return module_sources("anomalyflow.jobs", *modules, package_dir=LIBRARY)


def layout_code(wildcards):
    """Input function: a samples job's library files, with the reader of {dataset}'s layout (loaded by name)."""
    try:
        return code("anomalyflow.data.check", "anomalyflow.data.layouts", layout_module_name(ds(wildcards)["layout"]))
    except AnomalyflowError as error:
        _stop(error)


wildcard_constraints:
    dataset="|".join(DATASETS) or "NONE",
    category=r"[^/]+",


def family_regex(family):
    """A wildcard constraint matching the method names of one family (e.g. all patchcore variants)."""
    names = methods_of_family(config, family)
    return "|".join(names) if names else "NO_METHOD_OF_THIS_FAMILY"


def ds(wildcards):
    return dataset_config(config, wildcards.dataset)


def params_of(wildcards):
    """The parameters of {method} for {dataset}/{category} (anomalyflow.config.job_params): the params trigger
    sees per-category edits, but not the run options (checkpoint_every), which the scripts get from rule_job."""
    try:
        return job_params(config, wildcards.dataset, wildcards.category, wildcards.method)
    except AnomalyflowError as error:
        _stop(error)


def category_dir(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}"


def method_dir(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}/{wildcards.method}"


def model_files(family, *stages):
    """The files of {method}'s model folder that ``stages`` of ``family`` write (no stage: the whole folder), as
    the library's contract names them (anomalyflow.model_folder): a rule declares exactly what its stage writes."""
    return [f"results/{{dataset}}/{{category}}/{{method}}/{name}" for name in FOLDERS[family].names(*stages)]


def base_model_files(family):
    """Input function: the whole model folder of the ``family`` method that {method} builds on (its ``base``)."""

    def files(wildcards):
        base = params_of(wildcards)["base"]
        return [f"results/{wildcards.dataset}/{wildcards.category}/{base}/{name}" for name in FOLDERS[family].names()]

    return files


def samples_csv(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.category}/samples.csv"


def weights_input(weights):
    """The weights file a job reads, as its input (none for random init); ``weights`` as the job's params give it,
    ``imagenet`` already resolved to the file the local rule weights_download fetches."""
    return [] if weights in (None, "none") else [weights]


def threads_of(wildcards):
    """A compute job's threads: its dataset's (or teacher's) ``threads``, else the top-level value."""
    names = wildcards.keys()
    if "dataset" in names:
        return job_threads(config, dataset=wildcards.dataset)
    if "teacher" in names:
        return job_threads(config, teacher=wildcards.teacher)
    return job_threads(config)


def gpu_resources(mem_mb=16000, runtime=60):
    """Cluster resources of a GPU rule; scaled by config resources.mem_scale / runtime_scale."""
    scale = config.get("resources", {})
    return dict(
        mem_mb=int(mem_mb * scale.get("mem_scale", 1.0)),
        runtime=int(runtime * scale.get("runtime_scale", 1.0)),
        gpu=1,
    )


def cpu_resources(mem_mb=4000, runtime=30):
    scale = config.get("resources", {})
    return dict(
        mem_mb=int(mem_mb * scale.get("mem_scale", 1.0)),
        runtime=int(runtime * scale.get("runtime_scale", 1.0)),
    )


# --- datasets and the synthetic demo data ------------------------------------------------------


def dataset_root(name):
    return str(resolve_root(config["datasets"][name]["root"]))


def synthetic_files(name, category):
    """The files the synth rule writes for one category (declared outputs, known before rendering)."""
    spec = dict(config["datasets"][name].get("synthetic") or {})
    relative = planned_files(categories=[category], **spec)[category]
    return [f"{dataset_root(name)}/{path}" for path in relative]


def _category_files(wildcards):
    """(generated files a rule writes, files already there) of one category; stops on missing data."""
    spec = ds(wildcards)
    root = dataset_root(wildcards.dataset)
    planned = synthetic_files(wildcards.dataset, wildcards.category) if spec.get("synthetic") is not None else []
    if planned and not Path(root, wildcards.category).is_dir():
        return planned, []
    try:
        if not planned:
            require_dataset(wildcards.dataset, spec["layout"], root, wildcards.category)
        existing = category_files(spec["layout"], root, wildcards.category, folder=spec.get("folder"))
    except AnomalyflowError as error:
        _stop(error)
    return planned, sorted(set(map(str, existing)) - set(planned))


def category_inputs(wildcards):
    """A category's data as inputs: only the files another rule generates (the demo's), so the job waits
    for them; files already there are tracked by category_fingerprint instead of being listed (a real
    category has hundreds, which Snakemake would print for every job)."""
    return _category_files(wildcards)[0]


def category_fingerprint(wildcards):
    """A digest of every existing data file of a category (names, sizes, times): the samples job's params
    trigger, so adding, removing or changing one file reruns that category and no other."""
    existing = _category_files(wildcards)[1]
    return files_fingerprint(existing, dataset_root(wildcards.dataset))


# --- EfficientAD teachers ----------------------------------------------------------------------


def teacher(name):
    try:
        return teacher_params(config, name)
    except AnomalyflowError as error:
        _stop(error)


def teacher_source(name, size):
    """Where teacher {name}'s {size} PDN comes from (file, download, PUAD folder, distillation), checked."""
    try:
        return require_teacher(name, teacher(name), size)
    except AnomalyflowError as error:
        _stop(error)


def clutter_root(name):
    return f"resources/imagenet/{name}"


def teacher_images(name):
    """The folder of ImageNet(-like) images of a teacher (generated clutter, or ImageNet when it exists)."""
    spec = teacher(name)
    if spec["synthetic"] is not None:
        return f"{clutter_root(name)}/images"
    return imagenet_images(spec)


def teacher_image_inputs(name):
    """Declared inputs for those images: the generated files, or the ImageNet folder itself."""
    spec = teacher(name)
    if spec["synthetic"] is not None:
        return [f"{clutter_root(name)}/{p}" for p in planned_clutter_files(**spec["synthetic"])]
    images = imagenet_images(spec)
    if images is None:
        _stop(f"teachers.{name}.imagenet_root: {spec['imagenet_root']} is not a folder of ImageNet images")
    return [images]


def teacher_params_of(name):
    """Teacher {name}'s settings as its jobs get them (their params trigger): anomalyflow.config.teacher_job_params."""
    try:
        return teacher_job_params(config, name)
    except AnomalyflowError as error:
        _stop(error)


def teacher_weights(name):
    return weights_input(teacher_params_of(name)["weights"])


def efficientad_teacher_input(wildcards):
    params = params_of(wildcards)
    if params.get("pretrained"):
        return []
    return [teacher_source(params["teacher"], params["size"]).path]


def efficientad_teacher_description(wildcards):
    params = params_of(wildcards)
    if params.get("pretrained"):
        return f"the PUAD model folder {params['pretrained'].get('puad_dir')}"
    return teacher_source(params["teacher"], params["size"]).description


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


# --- evaluation --------------------------------------------------------------------------------


def maps_of(wildcards):
    """A method's own maps.npz (every family writes one; PUAD's holds its fused map)."""
    return f"results/{wildcards.dataset}/{wildcards.category}/{wildcards.method}/maps.npz"


def defects_config(wildcards):
    spec = ds(wildcards)
    if spec["layout"] not in ("mvtec_loco", "loco"):
        return []
    return [f"{dataset_root(wildcards.dataset)}/{wildcards.category}/defects_config.json"]


def official_maps_wanted(wildcards):
    """The official-layout map folders all.csv includes: every category x method when official_maps is true."""
    if not config["official_maps"]:
        return []
    spec = ds(wildcards)
    return expand("results/{dataset}/official_maps/{method}/{category}", dataset=wildcards.dataset,
                  method=spec["methods"], category=spec["categories"])


def provenance(wildcards):
    """Per category and method of the dataset, the weights and teacher its numbers come from (all.csv)."""
    spec = ds(wildcards)
    return [dict(category=c, method=m, provenance=method_provenance(config, wildcards.dataset, c, m))
            for c in spec["categories"] for m in spec["methods"]]


def all_metrics(wildcards):
    spec = ds(wildcards)
    return expand(
        "results/{dataset}/{category}/{method}/metrics.csv",
        dataset=wildcards.dataset,
        category=spec["categories"],
        method=spec["methods"],
    )


def ensemble_members(wildcards):
    return params_of(wildcards)["members"]


def ensemble_inputs(kind):
    """Input function: the members' scores or maps (``kind``: "scores" or "maps")."""

    def inputs(wildcards):
        folder = f"results/{wildcards.dataset}/{wildcards.category}"
        name = "scores.csv" if kind == "scores" else "maps.npz"
        return [f"{folder}/{member}/{name}" for member in ensemble_members(wildcards)]

    return inputs


# --- report ------------------------------------------------------------------------------------


def category_method_files(name):
    """Input function: one file per method of {category}, in the config's order; the report script pairs
    them with params.methods by position."""

    def files(wildcards):
        folder = f"results/{wildcards.dataset}/{wildcards.category}"
        return [f"{folder}/{m}/{name}" for m in ds(wildcards)["methods"]]

    return files


def report_figures(wildcards):
    """Every figure of the dataset's report (rules in report.smk)."""
    return [f"results/{wildcards.dataset}/figures/summary.svg"] + expand(
        "results/{dataset}/figures/{category}/{name}",
        dataset=wildcards.dataset,
        category=ds(wildcards)["categories"],
        name=["metrics.html", "operating_points.html", "roc.svg", "maps.png"],
    )


# --- exports -------------------------------------------------------------------------------------


def exportable_regex():
    """A wildcard constraint matching the methods whose family exports to ONNX (anomalyflow.export.writer)."""
    names = [name for family in EXPORTABLE for name in methods_of_family(config, family)]
    return "|".join(names) if names else "NO_EXPORTABLE_METHOD"


def export_inputs(wildcards):
    """Input function: what an export reads: {method}'s model folder (a PUAD's base EfficientAD's too), its
    scores.csv (the validation scores for thresholds) and its maps (the overlay colour range)."""
    family = params_of(wildcards)["family"]
    files = [f"{method_dir(wildcards)}/{name}" for name in FOLDERS[family].names()]
    if family == "puad":
        files += base_model_files("efficientad")(wildcards)
    return files + [f"{method_dir(wildcards)}/scores.csv", maps_of(wildcards)]


def export_entries(wildcards):
    """Per category x method of the dataset: its family and its export file (None: the family has none)."""
    spec = ds(wildcards)
    return [dict(category=c, method=m, family=method_params(config, wildcards.dataset, c, m)["family"],
                 file=f"results/{wildcards.dataset}/exports/{c}/{m}.onnx",
                 parity=f"results/{wildcards.dataset}/exports/{c}/{m}.parity.json")
            for c in spec["categories"] for m in spec["methods"]]


def export_files(wildcards):
    return [e[kind] for e in export_entries(wildcards) if e["family"] in EXPORTABLE for kind in ("file", "parity")]


# --- backbone weights -----------------------------------------------------------------------------


def backbone_weights(wildcards):
    """Input function: the weights file of {method}'s backbone (a refined PNI's: its DenseNet-161), or none."""
    return weights_input(params_of(wildcards)["weights"])

