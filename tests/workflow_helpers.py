"""Run the repository's Snakemake workflow in a scratch copy (results never land in the checkout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOB_MODULES = Path(__file__).resolve().parent / "job_modules"  # its sitecustomize.py records each job's imports


def copy_workflow(target: Path) -> Path:
    """A scratch copy of the workflow and the library source it runs (the Snakefile puts src/ on PYTHONPATH)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "Snakefile", target / "Snakefile")
    for folder in ("config", "workflow", "envs", "src", "report"):
        shutil.copytree(REPO / folder, target / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target


def clone_run(source: Path, target: Path) -> Path:
    """A copy of a finished run (workflow, results, Snakemake's metadata) that a test may modify."""
    shutil.copytree(source, target, symlinks=True)
    return target


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900,
              job_modules: Path | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; with ``job_modules``, every job writes there the anomalyflow modules its
    process imported (:func:`job_module_records`)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if job_modules is not None:
        job_modules.mkdir(parents=True, exist_ok=True)
        env["ANOMALYFLOW_JOB_MODULES"] = str(job_modules)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(JOB_MODULES), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


def dry_run(workdir: Path, *args: str) -> tuple[list[str], list[str]]:
    """One dry run: the rule names it would execute (one entry per job, from its first job-stats table)
    and the output files of those jobs."""
    listing = snakemake(workdir, "--dry-run", *args).stdout
    jobs: list[str] = []
    outputs: list[str] = []
    in_table = True
    for line in listing.splitlines():
        parts = line.split()
        if in_table and parts[:1] == ["total"]:
            in_table = False
        elif in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "job":
            jobs.extend([parts[0]] * int(parts[1]))
        if line.strip().startswith("output:"):
            outputs.extend(part.strip() for part in line.strip()[len("output:"):].split(","))
    return jobs, outputs


def planned_jobs(workdir: Path, *args: str) -> list[str]:
    """The rule names a dry run would execute (one entry per job)."""
    return dry_run(workdir, *args)[0]


def dry_run_outputs(workdir: Path, *args: str) -> list[str]:
    """The output files of the jobs a dry run would execute."""
    return dry_run(workdir, *args)[1]


def job_module_records(folder: Path) -> list[dict]:
    """What each job of a run with ``snakemake(..., job_modules=folder)`` imported: one dict per job, with
    its ``rule``, ``wildcards``, ``code`` inputs and the source files of its anomalyflow ``modules``."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
