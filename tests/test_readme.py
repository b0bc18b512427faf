"""Every command in the README's fenced ``bash`` blocks runs as written (issue 13).

The commands run in a copy of the finished demo run, with tiny trees in each public dataset's official
layout standing in for the datasets (at the default ``data_root``, ``resources/data``, and at ``/data``,
the README's example of a data folder elsewhere). Long runs become dry runs: ``make X`` is
``make -n X`` and a Snakemake run of a real dataset gets ``-n``; a report of a real dataset, which needs
that dataset's finished run, is checked as the dry run of the same target and config. A command fails
the test on a non-zero exit or a Python traceback. MVTec's own evaluation scripts, which the README shows on
the folders anomalyflow writes for them, are not distributed with anomalyflow: those commands are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dataset_trees import data_root
from workflow_helpers import REPO, clone_run

pytestmark = pytest.mark.slow

README = REPO / "README.md"
DATA_FOLDER = "/data"  # the README's example of a data_root elsewhere


def readme_commands(text: str) -> list[str]:
    """The commands of every ```bash block: comments and blank lines dropped, ``\\`` continuations joined."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        pending = ""
        for raw in block.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line:
                commands.append(line)
    return commands


def as_tested(command: str, data: Path) -> tuple[list[str], Path | None]:
    """How the test runs one README command: (argv, working directory or None for the run copy)."""
    argv = [re.sub(rf"(^|=){DATA_FOLDER}(?=/|$)", rf"\g<1>{data}", word) for word in shlex.split(command)]
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]], REPO
    if argv[0] == "source":
        return ["bash", "-c", f"source {argv[1]} && command -v snakemake anomalyflow"], None
    if argv[0] == "snakemake":
        real = [w for w in argv if w.startswith("results/") and not w.startswith("results/demo/")]
        if "--report" in argv and real:
            at = argv.index("--report")
            argv = argv[:at] + argv[at + 2:]
        read_only = {"--dry-run", "-n", "--list-changes", "--report"} & set(argv)
        if real and not read_only:
            argv = [*argv, "-n"]
        return argv, None
    if argv[0] == ".venv/bin/anomalyflow":
        return argv, None
    if argv[0] == "python" and argv[1].endswith("_evaluation/evaluate_experiment.py"):
        pytest.skip("MVTec's evaluation code comes with the datasets, not with anomalyflow; "
                    "tests/test_official_maps.py checks the folders it reads")
    raise AssertionError(f"README command {command!r}: the test does not know how to run it; teach as_tested")


@pytest.fixture(scope="module")
def run(demo_run, tmp_path_factory):
    workdir = clone_run(demo_run, tmp_path_factory.mktemp("readme") / "run")
    data = data_root(tmp_path_factory.mktemp("data"))
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    for folder in data.iterdir():
        (workdir / "resources" / "data" / folder.name).symlink_to(folder)
    return workdir, data


def test_the_readme_has_the_commands_this_test_expects():
    commands = readme_commands(README.read_text())
    assert commands[:2] == ["make demo", "make test"]  # the README's first lines
    for needle in ("snakemake --cores 8 results/loco/all.csv", "results/mvtec_ad/all.csv", "results/visa/all.csv",
                   "results/btad/all.csv", "--profile workflow/profiles/slurm", "check-data", "predict"):
        assert any(needle in c for c in commands), needle


@pytest.mark.parametrize("command", readme_commands(README.read_text()))
def test_readme_command_runs_as_written(run, command):
    workdir, data = run
    argv, cwd = as_tested(command, data)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(workdir / "src")}
    result = subprocess.run(argv, cwd=cwd or workdir, capture_output=True, text=True, env=env, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command!r} (run as {argv}) failed:\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
