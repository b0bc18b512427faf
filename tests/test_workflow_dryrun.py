"""Dry runs of the real-dataset configs against dataset trees the tests build (no training)."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image
from workflow_helpers import copy_workflow, dry_run

from anomalyflow.data.synth import generate

LOCO_CATEGORIES = ["breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors"]


@pytest.fixture(scope="module")
def loco_tree(tmp_path_factory):
    """A MVTec-LOCO-layout tree: the synthetic 'tray' category under the five LOCO names."""
    root = tmp_path_factory.mktemp("loco")
    generate(root / "_synth", categories=["tray"], n_train=3, n_validation=2, n_test_good=2, n_test_logical=2,
             n_test_structural=2)
    for name in LOCO_CATEGORIES:
        shutil.copytree(root / "_synth" / "tray", root / "data" / name)
    imagenet = root / "imagenet" / "n01440764"
    imagenet.mkdir(parents=True)
    Image.new("RGB", (64, 64), (10, 20, 30)).save(imagenet / "x.JPEG")
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def loco_dry_run(workdir, loco_tree, target: str):
    """A dry run of config/loco.yaml with the dataset and ImageNet roots pointed at the test tree."""
    return dry_run(workdir, "--configfile", "config/loco.yaml", "--config",
                   f"datasets={{'loco': {{'root': '{loco_tree / 'data'}'}}}}",
                   f"teachers={{'imagenet': {{'imagenet_root': '{loco_tree / 'imagenet'}'}}}}",
                   "--", target)


def test_loco_dry_run_lists_the_whole_chain_for_all_five_categories(workdir, loco_tree):
    jobs, outputs = loco_dry_run(workdir, loco_tree, "results/loco/all.csv")
    per_category = ["samples", "train_efficientad", "efficientad_quantiles", "efficientad_score", "fit_puad",
                    "score_puad", "patchcore_fit", "patchcore_score"]
    for rule in per_category:
        expected = 5 * (2 if rule not in ("samples", "patchcore_fit", "patchcore_score") else 1)
        assert jobs.count(rule) == expected, (rule, jobs.count(rule))
    assert jobs.count("evaluate") == 5 * 5
    assert jobs.count("distill_teacher") == 2 and jobs.count("imagenet_stats") == 1
    assert jobs.count("download_weights") == 2  # wide_resnet101_2 (teacher target), wide_resnet50_2 (PatchCore)
    for category in LOCO_CATEGORIES:
        for method in ("efficientad_s", "puad_s", "efficientad_m", "puad_m", "patchcore"):
            assert f"results/loco/{category}/{method}/metrics.csv" in outputs
    assert "results/loco/all.csv" in outputs
    assert not [o for o in outputs if o.startswith("results/demo")]


def test_readme_official_maps_command_plans_the_base_folder_and_a_link(workdir, loco_tree):
    """README, "Checking the numbers with MVTec's evaluation scripts": PUAD's folder links EfficientAD's."""
    jobs, outputs = loco_dry_run(workdir, loco_tree, "results/loco/official_maps/puad_s/breakfast_box")
    assert jobs.count("official_maps") == 1 and jobs.count("official_maps_linked") == 1
    assert "results/loco/official_maps/efficientad_s/breakfast_box" in outputs
    assert not [o for o in outputs if o.endswith("metrics.csv")]  # the maps need no evaluation
