"""Wall time of the whole demo DAG (``snakemake --cores 2 results/demo/all.csv``) in a scratch copy.

The workflow, config, envs, report and the library source are copied to a temporary folder (as the
workflow tests do) so no result lands in the checkout; the clock covers the whole Snakemake run from a
clean folder: synthetic data, every method's fit and scoring, evaluation and the results table. There
is no anomalib counterpart. Runs on the CPU (the demo's device is ``auto``: a GPU run would use it).

    python bench/demo_dag.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

# The scratch copy the workflow tests run in (the Snakefile puts the copied src/ on PYTHONPATH).
sys.path.insert(0, str(bl.REPO / "tests"))
from workflow_helpers import copy_workflow

NAME = "demo_dag"
TARGET = "results/demo/all.csv"


def run_demo(workdir: Path, cores: int, extra: list[str], timeout: int) -> tuple[float, int | None, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed ({result.returncode}):\n{result.stderr[-4000:]}")
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", result.stderr + result.stdout)
    if not steps:  # a dry run prints the job table only
        steps = [(None, n) for n in re.findall(r"^total\s+(\d+)", result.stdout + result.stderr, re.MULTILINE)]
    return wall, int(steps[-1][1]) if steps else None, result.stderr[-2000:]


def run(*, cores: int = 2, target: str = TARGET, keep: Path | None = None, timeout: int = 3600,
        extra: list[str] | None = None) -> tuple[dict, list[dict]]:
    scratch = Path(tempfile.mkdtemp(prefix="anomalyflow-demo-bench-")) if keep is None else keep
    try:
        workdir = copy_workflow(scratch / "wf")
        wall, jobs, _ = run_demo(workdir, cores, [*(extra or []), target], timeout)
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    results = [{"target": target, "cores": cores, "wall_s": wall, "jobs": jobs}]
    print(f"  demo DAG ({jobs} jobs, --cores {cores}): {wall:.1f} s", flush=True)
    settings = {"cores": cores, "target": target, "extra_args": extra or [], "scratch_copy": True}
    return settings, results


def table(results: list[dict]) -> None:
    bl.print_table("Demo DAG wall time (no anomalib counterpart)", ["target", "cores", "jobs", "wall"],
                   [[r["target"], r["cores"], r["jobs"], f"{r['wall_s']:.1f} s"] for r in results])


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it")
    args = parser.parse_args(argv)
    env = bl.environment(bl.resolve_device(args.device))
    if args.tiny:  # a dry run: builds the DAG, runs no job
        settings, results = run(cores=args.cores, keep=args.keep, extra=["--dry-run"])
    else:
        settings, results = run(cores=args.cores, keep=args.keep)
    table(results)
    return bl.finish(NAME, bl.resolve_device(args.device), env, settings, results, args)


if __name__ == "__main__":
    main()
