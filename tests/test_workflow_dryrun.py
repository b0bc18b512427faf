"""The real datasets' targets, typed as a user types them, against dataset trees the tests build (no training).

`snakemake --cores 8 results/<dataset>/all.csv` needs no --configfile: the default config knows every public
dataset and looks for it under `data_root` (default resources/data). Without the data, or without a teacher,
the run stops at its start with one line.
"""

from __future__ import annotations

import hashlib

import pytest
from dataset_trees import LOCO, MVTEC_AD, data_root
from workflow_helpers import copy_workflow, dry_run, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return data_root(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def stops_with_one_line(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("anomalyflow: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_loco_plans_the_whole_chain_for_all_five_categories(workdir, tree):
    jobs, outputs = dry_run(workdir, "--cores", "8", "results/loco/all.csv", "--config", f"data_root={tree}")
    per_category = ["data_samples", "efficientad_fit", "efficientad_fit_quantiles", "efficientad_score", "puad_fit",
                    "puad_score", "patchcore_fit", "patchcore_score"]
    for rule in per_category:
        expected = 5 * (2 if rule not in ("data_samples", "patchcore_fit", "patchcore_score") else 1)
        assert jobs.count(rule) == expected, (rule, jobs.count(rule))
    assert jobs.count("results_metrics") == 5 * 5
    assert jobs.count("teacher_distill") == 2 and jobs.count("teacher_stats") == 1
    assert jobs.count("weights_download") == 2  # wide_resnet101_2 (teacher target), wide_resnet50_2 (PatchCore)
    for category in LOCO:
        for method in ("efficientad_s", "puad_s", "efficientad_m", "puad_m", "patchcore"):
            assert f"results/loco/{category}/{method}/metrics.csv" in outputs
    assert "results/loco/all.csv" in outputs
    assert not [o for o in outputs if o.startswith("results/demo")]


def test_mvtec_ad_plans_puad_pni_and_patchcore_for_all_fifteen_categories(workdir, tree):
    jobs, outputs = dry_run(workdir, "--cores", "8", "results/mvtec_ad/all.csv", "--config", f"data_root={tree}")
    assert jobs.count("data_samples") == 15 and jobs.count("results_metrics") == 15 * 10
    assert jobs.count("pni_fit_memory") == 15 * 3 and jobs.count("pni_refined_fit") == 15
    assert jobs.count("ensemble_score") == 15 and jobs.count("efficientad_fit") == 15 * 2
    for category in MVTEC_AD:
        assert f"results/mvtec_ad/{category}/pni_ensemble/metrics.csv" in outputs


@pytest.mark.parametrize("dataset", ["loco", "mvtec_ad", "visa", "btad"])
def test_missing_data_stops_at_the_start_with_one_line_saying_what_to_put_where(workdir, tmp_path, dataset):
    result = snakemake(workdir, "-n", "--cores", "8", f"results/{dataset}/all.csv", "--config",
                       f"data_root={tmp_path}", check=False)
    line = stops_with_one_line(result)
    assert str(tmp_path) in line and "download it from" in line and "--config data_root=" in line


def test_a_missing_teacher_stops_at_the_start_naming_every_way_to_give_one(workdir, tree, tmp_path):
    # The LOCO data is there, ImageNet is not: no teacher can be distilled.
    (tmp_path / "mvtec_loco_anomaly_detection").symlink_to(tree / "mvtec_loco_anomaly_detection")
    result = snakemake(workdir, "-n", "--cores", "8", "results/loco/all.csv", "--config", f"data_root={tmp_path}",
                       check=False)
    line = stops_with_one_line(result)
    assert "imagenet/train: ImageNet folder not found" in line and "teachers.imagenet.download.s" in line


def test_a_teacher_fetched_by_url_is_checked_and_replaces_distillation(workdir, tree, tmp_path):
    teacher = tmp_path / "teacher_small.pth"
    teacher.write_bytes(b"pretend teacher weights")
    sha = hashlib.sha256(teacher.read_bytes()).hexdigest()
    override = tmp_path / "teacher.yaml"
    download = f"{{url: '{teacher.as_uri()}', sha256: '{sha}'}}"
    override.write_text(f"teachers:\n  imagenet:\n    download:\n      s: {download}\n")
    args = ("--cores", "8", "results/loco/all.csv", "--config", f"data_root={tree}", "--configfile",
            "config/config.yaml", str(override))
    jobs, outputs = dry_run(workdir, *args)
    assert jobs.count("teacher_fetch") == 1 and jobs.count("teacher_distill") == 1  # s fetched, m distilled
    assert "resources/teachers/imagenet/s.pth" in outputs
    # The local rule itself: the file arrives once, checked.
    snakemake(workdir, "resources/teachers/imagenet/s.pth", "--config", f"data_root={tree}", "--configfile",
              "config/config.yaml", str(override))
    assert (workdir / "resources" / "teachers" / "imagenet" / "s.pth").read_bytes() == teacher.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text(override.read_text().replace(sha, "0" * 64).replace("      s:", "      m:"))
    result = snakemake(workdir, "resources/teachers/imagenet/m.pth", "--config", f"data_root={tree}",
                       "--configfile", "config/config.yaml", str(bad), check=False)
    assert result.returncode != 0 and "differs from the expected" in result.stderr
    assert not (workdir / "resources" / "teachers" / "imagenet" / "m.pth").exists()


def test_official_maps_of_a_puad_method_are_written_from_its_own_fused_maps(workdir, tree):
    """README, "Checking the numbers with MVTec's evaluation scripts": PUAD's folder holds its fused map."""
    jobs, outputs = dry_run(workdir, "--cores", "8", "results/loco/official_maps/puad_s/breakfast_box", "--config",
                            f"data_root={tree}")
    assert jobs.count("official_maps_write") == 1 and "puad_score" in jobs
    assert "results/loco/official_maps/efficientad_s/breakfast_box" not in outputs
    assert "results/loco/breakfast_box/puad_s/maps.npz" in outputs
    assert not [o for o in outputs if o.endswith("metrics.csv")]  # the maps need no evaluation
