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


def _real_scale(bench_modules, tmp_path, *args):
    module = bench_modules("real_scale")
    return module, module.main(["--tiny", "--device", "cpu", "--records", str(tmp_path / "records"),
                                "--data", str(tmp_path / "data"), *args])


def test_real_scale_prefixes(bench_modules, tmp_path):
    """real_scale at a tiny size, in this process, on the stages that show each kind of measurement: in full,
    two image counts (ImageNet statistics), a training loop's steps, and the PNI MLP stopped after its prefix."""
    _, record = _real_scale(bench_modules, tmp_path, "--stages", "imagenet_stats", "distill_s", "pni_mlp")
    by_stage = {r["stage"]: r for r in record["results"]}
    assert list(by_stage) == ["samples", "imagenet_stats", "distill_s", "pni_memory", "pni_mlp"]
    assert all(r["full_s"] is not None and r["peak_bytes"] is not None for r in by_stage.values())
    assert [run["images"] for run in by_stage["imagenet_stats"]["runs"]] == [2, 4]
    distill = by_stage["distill_s"]
    assert len(distill["runs"][0]["step_ends_s"]) == 2 and distill["units_full"] == 60000
    assert distill["full_s"] > distill["wall_s"]
    mlp = by_stage["pni_mlp"]
    assert mlp["runs"][0]["stopped"] and len(mlp["runs"][0]["step_ends_s"]) == 2
    assert mlp["units_full"] > 0 and mlp["units_full"] % 15 == 0  # whole epochs, 15 of them
    assert not (tmp_path / "records").exists(), "--tiny must not add to the history"


def test_real_scale_stage_process(bench_modules, tmp_path):
    """A stage in a process of its own reports that process's peak memory: the sample table never imports
    torch, so it stays far below the parent's ~1 GB (which a forked child's ru_maxrss would inherit)."""
    _, record = _real_scale(bench_modules, tmp_path, "--runner", "process", "--stages", "samples")
    run = record["results"][0]["runs"][0]
    assert run["memory"].startswith("peak_rss_of_process")
    assert 0 < run["peak_bytes"] < 512 * 2**20
    assert (tmp_path / "data" / "work" / "results" / "real_scale" / "tray" / "samples.csv").is_file()


def test_real_scale_resume_reuses_the_same_calls_only(bench_modules, tmp_path):
    """A cut run goes on with --resume: a call made the same way is not run again (its measurement stands,
    dated); --remeasure runs a stage again; a call made differently (here: other parameters) always runs."""
    _, first = _real_scale(bench_modules, tmp_path, "--runner", "process", "--stages", "samples")
    result = tmp_path / "data" / "work" / "logs" / "samples.result.json"
    measured = result.read_text()
    _, resumed = _real_scale(bench_modules, tmp_path, "--runner", "process", "--stages", "samples", "--resume")
    (stage,) = resumed["results"]
    assert stage["reused_from"] and stage["runs"][0]["call_s"] == first["results"][0]["runs"][0]["call_s"]
    assert result.read_text() == measured
    _, again = _real_scale(bench_modules, tmp_path, "--runner", "process", "--stages", "samples", "--resume",
                           "--remeasure", "samples")
    assert "reused_from" not in again["results"][0] and result.read_text() != measured
    job = tmp_path / "data" / "work" / "logs" / "samples.job.json"
    job.write_text(job.read_text().replace('"mvtec_loco"', '"mvtec_ad"'))
    _, changed = _real_scale(bench_modules, tmp_path, "--runner", "process", "--stages", "samples", "--resume")
    assert "reused_from" not in changed["results"][0]
    with pytest.raises(SystemExit):
        _real_scale(bench_modules, tmp_path, "--stages", "samples", "--remeasure", "samples")


@pytest.mark.slow  # every stage of the chain at a tiny size: 1-3 min on 2 cores (mostly the refiner's DenseNet-161)
def test_real_scale_chain(bench_modules, tmp_path):
    module, record = _real_scale(bench_modules, tmp_path)
    assert [r["stage"] for r in record["results"]] == [stage.name for stage in module.STAGES]
    assert all(r["full_s"] is not None for r in record["results"])


def test_compare_runs_finds_a_changed_score_and_a_changed_map(bench_modules, tmp_path):
    import numpy as np

    compare_runs = bench_modules("compare_runs")
    for run in ("a", "b"):
        folder = tmp_path / run / "results" / "demo" / "tray" / "m"
        folder.mkdir(parents=True)
        (folder / "scores.csv").write_text("path,score\nx.png,0.5\n")
        np.savez_compressed(folder / "maps.npz", maps=np.ones((2, 4, 4), np.float32))
        (tmp_path / run / "results" / "demo" / "all.csv").write_text("method,image_auroc\nm,0.9\n")
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0  # zip timestamps differ: fine
    changed = tmp_path / "b" / "results" / "demo" / "tray" / "m"
    (changed / "scores.csv").write_text("path,score\nx.png,0.50000001\n")
    np.savez_compressed(changed / "maps.npz", maps=np.nextafter(np.ones((2, 4, 4), np.float32), 2))
    problems = compare_runs.compare(tmp_path / "a", tmp_path / "b", "demo")
    assert problems == ["tray/m/maps.npz: array 'maps' differs (float32(2, 4, 4) vs float32(2, 4, 4))",
                        "tray/m/scores.csv: bytes differ"]
