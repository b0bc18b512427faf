"""bench/gpu_check.sh, the one command the GPU machine runs, still works: its ``--tiny`` run on the CPU.

No timing assertion: the run only has to go through every step (install, CUDA tests, each benchmark, records,
summary) the way the GPU run will, so that the script cannot rot while no GPU is around.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDS = ["efficientad_inference", "efficientad_training", "coreset", "metrics", "scoring"]


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_tiny_run_writes_every_record_and_the_summary(tmp_path):
    out = tmp_path / "out"
    done = _run("--tiny", str(out), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in RECORDS:
        lines = (out / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == 1, name
        record = json.loads(lines[0])
        assert record["benchmark"] == name and record["results"] and record["note"] == "gpu_check"
    training = json.loads((out / "efficientad_training.jsonl").read_text())
    assert training["settings"]["steps"] and "loss_falling" in training["results"][0]["ours"]
    searches = [r.get("search") for r in json.loads((out / "scoring.jsonl").read_text())["results"]]
    assert searches == ["faiss-gpu", "torch", "torch"]  # PatchCore both ways (faiss-gpu: why not), then PNI
    summary = (out / "summary.md").read_text()
    assert "CUDA tests (`pytest -m cuda`" in summary and "exit code 0" in summary
    for row in ("EfficientAD-S inference", "EfficientAD-S training step", "greedy coreset", "AUPRO",
                "PatchCore scoring", "PNI scoring"):
        assert row in summary, row
    log = (out / "gpu_check.log").read_text()
    assert summary.strip().splitlines()[-1] in log  # everything printed is in the log
    try:
        import anomalib  # noqa: F401
    except ImportError:  # the side-by-side parts are skipped, and the output says so
        assert "anomalib is not importable" in log and "measuring anomalyflow only" in log


def test_full_run_without_a_gpu_stops_before_measuring(tmp_path):
    wheels = tmp_path / "no-wheels"
    wheels.mkdir()
    done = _run("--wheels", str(wheels), "--skip-tests", "--device", "cpu", str(tmp_path / "out"), timeout=300)
    assert done.returncode == 2
    assert "cannot measure here: no CUDA device is visible" in done.stdout
    assert not list((tmp_path / "out").glob("*.jsonl"))
