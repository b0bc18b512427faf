"""Shared test fixtures. Nothing here touches the network."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUMMARIES = pytest.StashKey[list]()


def shared_dir() -> Path:
    """The project's shared folder beside the checkout (absent in a user's clone)."""
    return Path(os.environ.get("ANOMALYFLOW_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def schema(repo_root) -> dict:
    """The config schema (src/anomalyflow/schema.yaml), parsed (validate_config does not change it)."""
    from anomalyflow.readers import load_yaml

    return load_yaml(repo_root / "src" / "anomalyflow" / "schema.yaml")


@pytest.fixture
def config(repo_root) -> dict:
    """A fresh copy of the demo config (config/config.yaml), not yet validated; a test may change it."""
    from anomalyflow.readers import load_yaml

    return load_yaml(repo_root / "config" / "config.yaml")


@pytest.fixture(scope="session")
def mvtec_mini() -> Path:
    """The real MVTec AD mini subset (screw); read in place, never copied into the repository."""
    root = shared_dir() / "data" / "mvtec_ad_mini"
    if not (root / "screw" / "train" / "good").is_dir():
        pytest.skip(f"real MVTec AD mini subset not found at {root} (set ANOMALYFLOW_SHARED to its parent folder)")
    return root


def built_once(request, name: str, build) -> Path:
    """The folder ``name`` made by ``build(folder)`` once per test session.

    Without pytest-xdist: a fresh temporary folder. Under it (`make test` runs two workers), one folder for
    the whole session: the first worker to need it builds it under a file lock and the other waits for it
    and reuses it, since each worker building its own demo would double the suite's heaviest step. A build
    that failed is started over by the next worker that needs it."""
    factory = request.getfixturevalue("tmp_path_factory")
    if not hasattr(request.config, "workerinput"):
        folder = factory.mktemp(name)
        build(folder)
        return folder
    root = factory.getbasetemp().parent  # this session's folder, shared by its workers
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also on an error
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def demo_job_modules(request) -> Path:
    """The folder where each job of ``demo_run`` records the library modules it imported (test_job_modules.py)."""
    return built_once(request, "demo_job_modules", lambda folder: None)


@pytest.fixture(scope="session")
def demo_run(request, demo_job_modules):
    """One complete run of the demo DAG (the README's `make demo`) in a scratch copy, shared by every test
    that needs finished results. Treat it as read-only: copy it (``workflow_helpers.clone_run``) to change it.
    """
    from workflow_helpers import copy_workflow, snakemake

    def build(folder: Path) -> None:
        copy_workflow(folder)
        snakemake(folder, job_modules=demo_job_modules)  # no target: the default rule builds all.csv

    return built_once(request, "demo_run", build)


@pytest.fixture(scope="session")
def demo_exports(request, demo_run):
    """A copy of the finished demo run with its exports built as `make demo` builds them (the ONNX files,
    their parity with the folders, exports.csv and the report's exports.html). Read-only, as ``demo_run``."""
    from workflow_helpers import clone_run, snakemake

    def build(folder: Path) -> None:
        snakemake(clone_run(demo_run, folder / "run"), "results/demo/exports/exports.csv")

    return built_once(request, "demo_exports", build) / "run"


@pytest.fixture(scope="session")
def summary_table(request):
    """``add(title, lines)``: a table printed in pytest's terminal summary, after every test has run."""

    def add(title: str, lines) -> None:
        request.config.stash.setdefault(SUMMARIES, []).append((title, list(lines)))

    return add


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped where torch sees no CUDA GPU (torch is imported only if there are any)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA GPU visible (bench/gpu_check.sh runs these on a GPU machine)")
        for item in marked:
            item.add_marker(skip)


def pytest_sessionfinish(session):
    # Under pytest-xdist (`make test` runs two workers) each worker's tables travel to the controller, which
    # prints the terminal summary.
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["summaries"] = json.dumps(session.config.stash.get(SUMMARIES, []))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    tables = getattr(node, "workeroutput", {}).get("summaries")
    if tables:
        node.config.stash.setdefault(SUMMARIES, []).extend(json.loads(tables))


def pytest_terminal_summary(terminalreporter, config):
    for title, lines in config.stash.get(SUMMARIES, []):
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
