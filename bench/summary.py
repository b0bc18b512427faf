"""The latest record of each benchmark as one markdown table (for bench/README.md), or a benchmark's history.

    python bench/summary.py                      # latest run of every benchmark, per device
    python bench/summary.py --history coreset    # every recorded run of one benchmark, oldest first
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl


def load(name: str, records: Path) -> list[dict]:
    path = records / f"{name}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _mib(value: int | None) -> str:
    return "" if value is None else f" / {value / 2**20:.0f} MiB"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}×"


#: The goals each figure is read against: issue 8's on the CPU, issue 17's on a GPU (bench/README.md).
GOALS = {
    "cpu": {"aupro": 3.0, "pixel_auroc": 2.0, "coreset": 10.0, "efficientad_inference": 2.0,
            "efficientad_training": 2.0},
    "cuda": {"aupro": 10.0, "coreset": 10.0, "efficientad_inference": 3.0, "efficientad_training": 3.0,
             "latency_ms": 1.0},
}


def _kind(device: str | None) -> str:
    return "cuda" if str(device).startswith("cuda") else "cpu"


def _at_least(goal: float | None, speedup: float | None, ok: bool = True) -> str:
    if goal is None or speedup is None:
        return "—"
    return f"≥{goal:g}×: {'yes' if speedup >= goal and ok else 'no'}"


def goal_of(name: str, device: str, r: dict) -> str:
    """The goal cell of one result row: the goal and whether this run met it ("—" where none applies)."""
    goals = GOALS[_kind(device)]
    gpu = _kind(device) == "cuda"
    if name == "metrics":
        return _at_least(goals.get(r["metric"]), r.get("speedup"), r.get("equal_1e-6", False))
    if name == "coreset":
        wanted = r["n"] == 204_800 and (gpu or r["fraction"] == 0.01)
        return _at_least(goals["coreset"] if wanted else None, r.get("speedup"))
    if name in ("efficientad_inference", "efficientad_training"):
        if r["size"] != "s" or r["precision"] != ("fp16" if gpu else "fp32"):
            return "—"
        if gpu and name == "efficientad_inference" and r["batch"] == 1:
            limit = goals["latency_ms"]
            return f"≤{limit:g} ms: {'yes' if r['ours']['median_s'] * 1000 <= limit else 'no'}"
        if gpu and r["batch"] != (16 if name == "efficientad_inference" else 1):
            return "—"
        return _at_least(goals[name], r.get("speedup"))
    return "—"


def rows_of(record: dict) -> list[list[str]]:
    name, out = record["benchmark"], []
    for r in record["results"]:
        ours, theirs = r.get("ours", {}), r.get("theirs")
        tm = theirs["median_s"] if theirs else None
        device = r.get("device", record["device"])
        goal = goal_of(name, device, r)
        if name == "metrics":
            what = f"{'AUPRO' if r['metric'] == 'aupro' else 'pixel AUROC'}, {r['maps']} maps {r['image_size']}²"
            peak, tpeak = _mib(ours.get("peak_bytes")) if _kind(device) == "cuda" else "", ""
            if theirs and _kind(device) == "cuda":
                tpeak = _mib(theirs.get("peak_bytes"))
            out.append([what, device, _t(ours["median_s"]) + peak, (_t(tm) + tpeak) if theirs else "—",
                        _x(r.get("speedup")), goal])
        elif name == "coreset":
            what = (f"greedy coreset {r['n']:,}×{r['dim']:,}, {r['fraction']:.0%} ({r['k']:,} picks, "
                    f"{r['projection_dim']}-d, {r.get('storage', 'float32')})")
            peak = _mib(ours.get("peak_bytes"))
            tpeak = _mib(theirs.get("peak_bytes")) if theirs else ""
            out.append([what, device, _t(ours["median_s"]) + peak, (_t(tm) + tpeak) if theirs else "—",
                        _x(r.get("speedup")), goal])
        elif name in ("efficientad_inference", "efficientad_training"):
            kind, rate, unit = (("inference", "images_per_s", "img/s") if name == "efficientad_inference"
                                else ("training step", "steps_per_s", "steps/s"))
            what = f"EfficientAD-{r['size'].upper()} {kind} {r['precision']}, batch {r['batch']}"
            cells = []
            for side in (ours, theirs):
                if not side:
                    cells.append("—")
                    continue
                cell = f"{_t(side['median_s'])} ({side[rate]:.2f} {unit})" + _mib(side.get("peak_gpu_bytes"))
                if "loss_falling" in side:
                    cell += f", loss {side['loss_start']:.3g}→{side['loss_end']:.3g} over {side['repeats']} steps"
                cells.append(cell)
            out.append([what, device, *cells, _x(r.get("speedup")), goal])
        elif name == "scoring":
            ref = "anomalib" if r["method"] == "patchcore" else "official loop"
            search = f", {r['search']} search" if "search" in r else ""
            what = (f"{'PatchCore' if r['method'] == 'patchcore' else 'PNI'} scoring, batch {r['batch']}, "
                    f"{r['image_size']}², bank {r['bank']:,}×{r['dim']}{search} (ref: {ref})")
            mine = (f"{ours['images_per_s']:.2f} img/s" + _mib(ours.get("peak_gpu_bytes")) if ours
                    else f"not measured: {r.get('unavailable', '?')}")
            out.append([what, device, mine,
                        f"{theirs['images_per_s']:.2f} img/s" + _mib(theirs.get("peak_gpu_bytes")) if theirs else "—",
                        _x(r.get("speedup")), goal])
        elif name == "demo_dag":
            out.append([f"demo DAG, snakemake --cores {r['cores']} ({r['jobs']} jobs)", device,
                        _t(r["wall_s"]), "—", "—", "—"])
    return out


def latest(name: str, records: list[dict]) -> list[dict]:
    """The last record; for scoring, also the last one of each method the last record did not run."""
    if not records:
        return []
    chosen = [records[-1]]
    if name == "scoring":
        def key(r):
            return r["method"], r.get("search")

        seen = {key(r) for r in records[-1]["results"]}
        for record in reversed(records[:-1]):
            rows = [r for r in record["results"] if key(r) not in seen]
            if rows:
                chosen.append({**record, "results": rows})
                seen.update(key(r) for r in rows)
    return chosen


NAMES = ["metrics", "coreset", "efficientad_inference", "efficientad_training", "scoring", "demo_dag"]


def markdown(records: Path, names=NAMES, *, history: bool = False) -> list[str]:
    """The table's lines: every record (``history``) or the latest of each benchmark in ``records``."""
    lines = ["| benchmark | device | anomalyflow | anomalib / reference | speedup | goal |",
             "|---|---|---|---|---|---|"]
    for name in names:
        runs = load(name, records)
        for record in runs if history else latest(name, runs):
            load_start = (record.get("loadavg_start") or [None])[0]
            lines += ["| " + " | ".join(row) + " |" for row in rows_of(record)]
            note = f" — {record['note']}" if record.get("note") else ""
            lines.append(f"|  ↳ {record['date'][:16]}, {record.get('device_name', '?')}, torch {record['torch']}, "
                         f"load {load_start}, {str(record.get('git_commit'))[:12]}{note} | | | | | |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=bl.RECORDS)
    parser.add_argument("--history", default=None, help="a benchmark name: print all its records")
    args = parser.parse_args(argv)
    names = [args.history] if args.history else NAMES
    print("\n".join(markdown(args.records, names, history=bool(args.history))))


if __name__ == "__main__":
    main()
