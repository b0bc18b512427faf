"""The demo DAG end to end, as a new user runs it, in a scratch copy of the workflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import clone_run, dry_run, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(demo_run, tmp_path_factory):
    # Dry runs only read, but the override file below is written into the copy.
    return clone_run(demo_run, tmp_path_factory.mktemp("demo") / "run")


def test_demo_writes_finite_metrics_for_every_category_and_method(demo):
    table = pd.read_csv(demo / "results" / "demo" / "all.csv")
    config = yaml.safe_load((demo / "config" / "config.yaml").read_text())["datasets"]["demo"]
    expected = {(c, m) for c in config["categories"] + ["mean"] for m in config["methods"]}
    assert set(zip(table["category"], table["method"], strict=True)) == expected
    for column in ("image_auroc", "image_auroc_logical", "image_auroc_structural", "image_auroc_lo_st_mean",
                   "pixel_auroc", "aupro", "auc_spro_0.05"):
        values = table[column].to_numpy(dtype=float)
        assert np.isfinite(values).all(), column
        assert ((values >= 0) & (values <= 1)).all(), column


def test_second_run_has_nothing_to_do(demo):
    result = snakemake(demo, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_one_category_reruns_only_that_category(demo):
    override = demo / "config" / "tray_override.yaml"
    override.write_text(yaml.safe_dump(
        {"datasets": {"demo": {"category_params": {"tray": {"patchcore": {"coreset_fraction": 0.2}}}}}}))
    jobs, outputs = dry_run(demo, "--configfile", "config/config.yaml", str(override))
    assert not [path for path in outputs if "/board/" in path]
    assert "results/demo/tray/patchcore/model.json" in outputs
    assert "results/demo/all.csv" in outputs
    # The demo's pni_ensemble has PatchCore as a member: it is rebuilt too.
    assert sorted(set(jobs)) == ["all", "ensemble_score", "patchcore_fit", "patchcore_score", "report_category",
                                 "report_summary", "results_metrics", "results_operating_points", "results_table"]


def test_lint_is_clean(demo):
    result = snakemake(demo, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_puad_beats_efficientad_on_logical_anomalies(demo):
    """Issue 5: the pooled Gaussian must catch the demo's logical anomalies better than EfficientAD alone."""
    table = pd.read_csv(demo / "results" / "demo" / "all.csv").set_index(["category", "method"])
    puad = table.loc[("mean", "puad_s"), "image_auroc_logical"]
    efficientad = table.loc[("mean", "efficientad_s"), "image_auroc_logical"]
    assert puad > efficientad + 0.1, (puad, efficientad)
    # PUAD's evaluated map is its own (EfficientAD's fused with the logical map), its maps.npz keeps the logical one
    assert table.loc[("mean", "puad_s"), "pixel_auroc"] != table.loc[("mean", "efficientad_s"), "pixel_auroc"]
    with np.load(demo / "results" / "demo" / "tray" / "puad_s" / "maps.npz") as maps:
        assert sorted(maps.files) == ["frame", "logical", "maps", "paths"]
        assert maps["logical"].shape == maps["maps"].shape
