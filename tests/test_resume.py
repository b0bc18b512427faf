"""Interrupted runs: a training job killed mid-run leaves nothing that looks finished, resumes from its
checkpoint, and the rerun's results equal an uninterrupted run's, byte for byte.

The demo DAG's ``efficientad_fit`` checkpoints every 30 of its 60 iterations (``checkpoint_every``
in config/config.yaml), so the test needs no override. In a copy of the shared finished demo run it
deletes tray's EfficientAD and PUAD results and what is downstream of them, starts the DAG, SIGKILLs
the training job's Python process as soon as its checkpoint appears, then Snakemake and everything it
started, as a node failure would.
``--unlock`` and ``--rerun-incomplete`` then finish the DAG. The equality of all.csv with the
uninterrupted ``demo_run`` is also this suite's determinism check: the same config and seed, in new
processes, give the same bytes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from workflow_helpers import clone_run, planned_jobs, snakemake

# The shared demo run may be built inside this module's first setup: allow for it plus the rerun.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

CATEGORY_DIR = Path("results/demo/tray")
MODEL_DIR = CATEGORY_DIR / "efficientad_s"
CHECKPOINT = CATEGORY_DIR / "efficientad_s.ckpt"  # beside the model folder: Snakemake clears outputs on a rerun
TRAIN_LOG = Path("logs/demo/tray/efficientad_s/efficientad_fit.log")


def _processes_of_session(session: int, script: str) -> list[int]:
    """Processes of a session whose command line mentions ``script`` (Snakemake runs scripts from a temp copy)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if script in cmdline and os.getsid(int(entry.name)) == session:
                found.append(int(entry.name))
        except (OSError, ProcessLookupError):  # exited meanwhile
            continue
    return found


def _wait_for(condition, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"Snakemake ended (status {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def resumed(demo_run, tmp_path_factory):
    run = clone_run(demo_run, tmp_path_factory.mktemp("resume") / "run")
    # As if these jobs had never run, down to all.csv: Snakemake rebuilds a missing intermediate file only
    # when something downstream of it is missing or older (the temp() semantics), so the downstream results
    # go too: tray's report figures, the summary and the table.
    for method in ("efficientad_s", "puad_s"):
        shutil.rmtree(run / CATEGORY_DIR / method)
    shutil.rmtree(run / "results/demo/figures/tray")
    for path in ("results/demo/figures/summary.svg", "results/demo/all.csv"):
        (run / path).unlink()
    out = (run / "interrupted.log").open("w")
    command = [sys.executable, "-m", "snakemake", "--cores", "2"]
    process = subprocess.Popen(command, cwd=run, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait_for(lambda: (run / CHECKPOINT).is_file(), process, 900, "the training checkpoint")
        jobs = _processes_of_session(process.pid, "efficientad_fit")
        assert jobs, "no efficientad_fit process found"
        for pid in jobs:
            os.kill(pid, signal.SIGKILL)
        os.killpg(process.pid, signal.SIGKILL)  # Snakemake and any other job: a node going down
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        out.close()
    interrupted = {
        "checkpoint": torch.load(run / CHECKPOINT, weights_only=True),
        "model_files": sorted(p.name for p in (run / MODEL_DIR).glob("*")) if (run / MODEL_DIR).exists() else [],
        "snakemake": (run / "interrupted.log").read_text(),
    }
    snakemake(run, "--unlock")
    rerun = snakemake(run, "--rerun-incomplete")
    return run, interrupted, rerun


def test_killed_job_left_only_its_checkpoint(resumed):
    _, interrupted, _ = resumed
    assert interrupted["checkpoint"]["step"] == 30  # complete and loadable: written atomically
    # Outputs are written when training ends: a killed job leaves none that could pass for finished.
    assert "model.json" not in interrupted["model_files"] and "student.pt" not in interrupted["model_files"]


def test_only_the_forced_jobs_and_their_descendants_ran(resumed):
    """A copied run reruns what was forced, not the whole DAG (inputs are recorded relative to the run)."""
    _, interrupted, rerun = resumed
    for output in (interrupted["snakemake"], rerun.stdout + rerun.stderr):
        assert "category=tray" in output
        assert "category=board" not in output and "synth_demo" not in output, output[-3000:]


def test_rerun_resumes_from_the_checkpoint(resumed):
    run, _, _ = resumed
    # Snakemake starts the rerun with a fresh log; should it ever append, the last start is the rerun's.
    log = (run / TRAIN_LOG).read_text().splitlines()
    starts = [i for i, line in enumerate(log) if "training EfficientAD-S on" in line]
    assert starts and "60 iterations from 30," in log[starts[-1]], log
    assert any("resuming after 30 iterations" in line for line in log[:starts[-1]]), log
    assert not (run / CHECKPOINT).exists()  # deleted once the model is written
    assert not [p for p in (run / "results").rglob("*") if ".tmp-" in p.name]


def test_resumed_results_equal_the_uninterrupted_run(resumed, demo_run):
    run, _, _ = resumed
    for name in ("student.pt", "autoencoder.pt"):  # the resumed weights are the uninterrupted ones exactly
        resumed_state = torch.load(run / MODEL_DIR / name, weights_only=True)
        reference = torch.load(demo_run / MODEL_DIR / name, weights_only=True)
        assert resumed_state.keys() == reference.keys()
        assert all(torch.equal(resumed_state[key], reference[key]) for key in reference), name
    for path in ("results/demo/all.csv", "results/demo/tray/efficientad_s/scores.csv",
                 "results/demo/tray/puad_s/scores.csv"):
        assert (run / path).read_bytes() == (demo_run / path).read_bytes(), path


def test_checkpoint_interval_is_not_a_rerun_trigger(resumed):
    """checkpoint_every changes no result (resume is exact), so editing it must not retrain anything."""
    run, _, _ = resumed
    override = run / "config" / "checkpoints.yaml"
    override.write_text(yaml.safe_dump(
        {"datasets": {"demo": {"method_params": {"efficientad_s": {"checkpoint_every": 10}}}},
         "teachers": {"demo": {"checkpoint_every": 7}}}))
    assert planned_jobs(run, "--configfile", "config/config.yaml", str(override)) == []
    override.write_text(yaml.safe_dump(
        {"datasets": {"demo": {"method_params": {"efficientad_s": {"iterations": 90}}}}}))
    assert "efficientad_fit" in planned_jobs(run, "--configfile", "config/config.yaml", str(override))
