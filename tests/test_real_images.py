"""The workflow end to end on real images: the MVTec AD mini subset (1024x1024 grayscale screws, 24 train,
8 good and 15 defective test images), every method family at tiny settings with random weights (issue 13).

The numbers say nothing about the methods (random weights, 3 validation images); the test asserts that
real files of real size go through every stage: finite, in-range metrics for every row, the HTML
report, and `anomalyflow predict` on a folder of those images. It skips where ../shared is absent.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import clone_run, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

METHODS = ["patchcore", "efficientad_s", "puad_s", "pni_resnet18", "pni_refined", "pni_ensemble"]


@pytest.fixture(scope="module")
def mini_run(demo_run, mvtec_mini, tmp_path_factory):
    # A copy of the finished demo: its tiny teacher (distilled from generated clutter) is reused.
    workdir = clone_run(demo_run, tmp_path_factory.mktemp("mini") / "run")
    demo = yaml.safe_load((workdir / "config" / "config.yaml").read_text())["datasets"]["demo"]
    config = {"datasets": {"mini": {
        "layout": "mvtec_ad", "root": str(mvtec_mini), "categories": ["screw"], "weights": "none", "threads": 1,
        "methods": METHODS, "validation": {"fraction": 0.15, "seed": 42}, "evaluation": {"size": 128},
        "method_params": demo["method_params"]}}}
    (workdir / "mini.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "results/mini/all.csv", "--configfile", "mini.yaml", timeout=1500)
    return workdir, result


def test_every_method_family_gives_finite_in_range_metrics_on_real_images(mini_run):
    workdir, _ = mini_run
    table = pd.read_csv(workdir / "results" / "mini" / "all.csv", dtype={"category": str})
    assert set(zip(table["category"], table["method"], strict=True)) == {
        (c, m) for c in ("screw", "mean") for m in METHODS}
    for column in ("image_auroc", "pixel_auroc", "aupro"):
        values = table[column].to_numpy(dtype=float)
        assert np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all(), column
    samples = pd.read_csv(workdir / "results" / "mini" / "screw" / "samples.csv")
    assert (samples["split"].value_counts().to_dict() == {"train": 21, "test": 23, "validation": 3})
    assert (table["provenance"].str.contains("weights none") | table["provenance"].str.contains("teacher demo")
            | table["provenance"].str.startswith("ensemble of")).all()


def test_the_samples_job_prints_no_list_of_images(mini_run):
    """A real category's first job shows what it does, not its hundreds of data files (issue 13)."""
    _, result = mini_run
    console = result.stdout + result.stderr
    block = console[console.index("rule data_samples:"):]
    block = block[: block.index("\n\n")]
    assert ".png" not in block and len(block.splitlines()) < 15, block


def test_the_report_builds_from_real_images(mini_run):
    workdir, _ = mini_run
    snakemake(workdir, "--report", "report.html", "results/mini/all.csv", "--configfile", "mini.yaml")
    assert (workdir / "report.html").stat().st_size > 10_000


def test_predict_scores_a_folder_of_real_images(mini_run, mvtec_mini):
    workdir, _ = mini_run
    images = mvtec_mini / "screw" / "test" / "scratch_head"
    out = workdir / "predictions"
    subprocess.run([sys.executable, "-m", "anomalyflow.cli", "predict", "--model",
                    str(workdir / "results" / "mini" / "screw" / "patchcore"), "--images", str(images),
                    "--out", str(out)], check=True, capture_output=True, text=True, cwd=workdir)
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == len(list(images.glob("*.png"))) == 3
    assert np.isfinite(predictions["score"]).all()
    assert len(list((out / "maps").iterdir())) == 3 and len(list((out / "overlays").iterdir())) == 3


def test_exports_of_real_image_models_reproduce_their_folders(mini_run, mvtec_mini, tmp_path):
    """Issue 16.2 on real files: 1024² grayscale PNGs go through the export's own decode and resize (not the
    library's loader) and the ONNX files still give the folders' scores and maps on every validation and test
    image; one file then scores a folder of real images at an operating point, torch-free path included."""
    workdir, _ = mini_run
    snakemake(workdir, "results/mini/exports/exports.csv", "--configfile", "mini.yaml")
    table = pd.read_csv(workdir / "results" / "mini" / "exports" / "exports.csv")
    exported = table.loc[table["export"].notna()]
    assert sorted(exported["method"]) == ["efficientad_s", "patchcore", "puad_s"]
    assert exported["within_tolerance"].all() and (exported["images"] == 26).all(), exported
    images = mvtec_mini / "screw" / "test" / "scratch_head"
    run = subprocess.run([sys.executable, "-m", "anomalyflow.cli", "predict", "--model",
                          str(workdir / "results" / "mini" / "exports" / "screw" / "puad_s.onnx"), "--images",
                          str(images), "--out", str(tmp_path / "out"), "--threshold", "fpr:0"],
                         capture_output=True, text=True, cwd=workdir)
    assert run.returncode == 0, run.stderr
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(predictions) == 3 and np.isfinite(predictions["score"]).all()
