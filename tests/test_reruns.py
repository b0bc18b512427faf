"""What a change reruns (README, "Changing things: what reruns"): exactly the affected category's jobs.

Library-code edits are tested in test_code_reruns.py; a per-category parameter edit in test_workflow.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image, ImageOps
from workflow_helpers import clone_run, dry_run_outputs, planned_jobs

pytestmark = pytest.mark.slow


@pytest.fixture
def run(demo_run, tmp_path):
    return clone_run(demo_run, tmp_path / "run")


def test_adding_a_training_image_reruns_that_category_and_nothing_else(run):
    train = run / "resources" / "data" / "demo" / "tray" / "train" / "good"
    # A new, different normal image (a mirrored one), as a user adding data would.
    ImageOps.mirror(Image.open(sorted(train.glob("*.png"))[0])).save(train / "new_000.png")

    jobs = Counter(planned_jobs(run))
    outputs = dry_run_outputs(run)

    # The input trigger: the category's set of data files changed, so its sample table is rebuilt and every
    # method of tray is refitted and rescored; board and the shared teacher are untouched.
    per_method = ["patchcore_fit", "patchcore_score", "train_efficientad", "efficientad_quantiles",
                  "efficientad_score", "fit_puad", "score_puad"]
    assert jobs == Counter({"samples": 1, **dict.fromkeys(per_method, 1), "evaluate": 3, "report_category": 1,
                            "report_summary": 1, "aggregate": 1, "all": 1}), jobs
    assert not [path for path in outputs if "/board/" in path]
    for method in ("patchcore", "efficientad_s", "puad_s"):
        assert f"results/demo/tray/{method}/metrics.csv" in outputs
    assert "results/demo/tray/samples.csv" in outputs and "results/demo/all.csv" in outputs
