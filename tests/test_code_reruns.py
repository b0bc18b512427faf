"""Issue 7 (c): editing one method's library code reruns exactly the jobs that run that code."""

from __future__ import annotations

import pytest
from workflow_helpers import clone_run, dry_run, planned_jobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(demo_run, tmp_path_factory):
    return clone_run(demo_run, tmp_path_factory.mktemp("code") / "run")


def _touch_source(run, relative):
    path = run / "src" / "anomalyflow" / relative
    path.write_text(path.read_text() + "\n# an edit\n")


def test_editing_puad_reruns_only_puad_jobs(run):
    _touch_source(run, "puad.py")
    jobs, outputs = dry_run(run)
    # (+ the report's figures, which show PUAD's scores)
    assert sorted(set(jobs)) == ["all", "puad_fit", "puad_score", "report_category", "report_summary",
                                 "results_metrics", "results_operating_points", "results_table"]
    assert jobs.count("puad_fit") == 2 and jobs.count("results_metrics") == 2  # both categories, PUAD only
    assert all("/puad_s/" in o or "/figures/" in o or o.endswith("all.csv") for o in outputs)


def test_editing_the_feature_module_reruns_the_methods_that_use_it(run):
    _touch_source(run, "patches/coreset.py")
    jobs = set(planned_jobs(run))
    assert {"patchcore_fit", "patchcore_score"} <= jobs
    assert not jobs & {"efficientad_fit", "efficientad_score", "data_synth_demo_tray", "data_samples"}


def test_editing_pni_reruns_no_efficientad_or_teacher_job(demo_run, tmp_path):
    """Issue 15: the two method families are independent (patch features live in anomalyflow.patches), so an
    edit of PNI's code leaves EfficientAD, PUAD and the teacher (a day of GPU time on real data) alone."""
    run = clone_run(demo_run, tmp_path / "run")  # its own copy: the module's run carries the edits above
    _touch_source(run, "pni/model.py")
    jobs = set(planned_jobs(run))
    assert {"pni_fit_memory", "pni_score", "pni_refined_score"} <= jobs
    assert not {job for job in jobs if job.startswith(("efficientad_", "puad_", "teacher_", "patchcore_"))}
