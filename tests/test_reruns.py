"""What a change reruns (README, "Changing things: what reruns"): exactly the affected category's jobs.

Library-code edits are tested in test_code_reruns.py; a per-category parameter edit in test_workflow.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image, ImageOps
from workflow_helpers import clone_run, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture
def run(demo_run, tmp_path):
    return clone_run(demo_run, tmp_path / "run")


def dry_run_jobs(workdir, *args: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run lists."""
    jobs: list[tuple[str, list[str]]] = []
    for line in snakemake(workdir, "--dry-run", *args).stdout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append((line.split()[1].rstrip(":"), []))
        elif line.strip().startswith("output:") and jobs:
            jobs[-1][1].extend(part.strip() for part in line.strip()[len("output:"):].split(","))
    return jobs


def test_adding_a_training_image_reruns_that_category_and_nothing_else(run):
    # Every job of the demo DAG that writes something of tray (whichever methods the demo config runs).
    every_job = dry_run_jobs(run, "--forceall")
    tray_jobs = Counter(rule for rule, outputs in every_job
                        if any(o.startswith("results/") and "/tray/" in o for o in outputs))
    assert tray_jobs["data_samples"] == 1 and tray_jobs["results_metrics"] >= 3, tray_jobs

    train = run / "resources" / "data" / "demo" / "tray" / "train" / "good"
    # A new, different normal image (a mirrored one), as a user adding data would.
    ImageOps.mirror(Image.open(sorted(train.glob("*.png"))[0])).save(train / "new_000.png")
    planned = dry_run_jobs(run)

    # The input trigger: tray's set of data files changed, so its sample table is rebuilt and every method
    # of tray refitted, rescored and evaluated, its figures redrawn; then the dataset-wide summary chart and
    # all.csv. Nothing of board, nothing shared (synthetic data, teacher).
    assert Counter(rule for rule, _ in planned) == tray_jobs + Counter(["report_summary", "results_table", "all"])
    outputs = [o for _, outs in planned for o in outs]
    assert not [o for o in outputs if "/board/" in o]
    assert "results/demo/tray/samples.csv" in outputs and "results/demo/all.csv" in outputs
