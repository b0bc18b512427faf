"""The benchmark scripts (bench/) still run: each at a tiny size, anomalyflow side only, nothing recorded.

Not a benchmark and no timing assertion: it only keeps the scripts from rotting as the library changes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", ["metrics_speed", "coreset", "coreset_quality", "efficientad_inference",
                                  "efficientad_training", "scoring", "demo_dag"])
def test_benchmark_runs_tiny(bench_modules, name, tmp_path):
    module = bench_modules(name)
    record = module.main(["--tiny", "--no-anomalib", "--device", "cpu", "--records", str(tmp_path)])
    assert record["results"], f"{name} measured nothing"
    assert record["device"] == "cpu" and record["torch"]
    assert not list(tmp_path.iterdir()), "--tiny must not add to the history"


def test_record_history_appends(bench_modules, tmp_path):
    benchlib = bench_modules("benchlib")
    env = benchlib.environment(benchlib.resolve_device("cpu"))
    for _ in range(2):
        benchlib.write_record("x", env, {"n": 1}, [{"ours": {"median_s": 1.0}}], records=tmp_path)
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert '"loadavg_start"' in lines[0] and '"git_commit"' in lines[0]
