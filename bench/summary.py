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


def rows_of(record: dict) -> list[list[str]]:
    name, out = record["benchmark"], []
    for r in record["results"]:
        ours, theirs = r.get("ours", {}), r.get("theirs")
        tm = theirs["median_s"] if theirs else None
        if name == "metrics":
            goal = {"aupro": 3.0, "pixel_auroc": 2.0}[r["metric"]]
            what = f"{'AUPRO' if r['metric'] == 'aupro' else 'pixel AUROC'}, {r['maps']} maps {r['image_size']}²"
            met = "—" if not theirs or r["device"] != "cpu" else (
                f"≥{goal:g}×: {'yes' if r['speedup'] >= goal and r['equal_1e-6'] else 'no'}")
            out.append([what, r["device"], _t(ours["median_s"]), _t(tm), _x(r.get("speedup")), met])
        elif name == "coreset":
            what = (f"greedy coreset {r['n']:,}×{r['dim']:,}, {r['fraction']:.0%} ({r['k']:,} picks, "
                    f"{r['projection_dim']}-d, {r.get('storage', 'float32')})")
            met = "—"
            if theirs and r["n"] == 204_800 and r["fraction"] == 0.01:
                met = f"≥10×: {'yes' if r['speedup'] >= 10 else 'no'}"
            peak = _mib(ours.get("peak_bytes"))
            tpeak = _mib(theirs.get("peak_bytes")) if theirs else ""
            out.append([what, record["device"], _t(ours["median_s"]) + peak, (_t(tm) + tpeak) if theirs else "—",
                        _x(r.get("speedup")), met])
        elif name in ("efficientad_inference", "efficientad_training"):
            kind, rate, unit = (("inference", "images_per_s", "img/s") if name == "efficientad_inference"
                                else ("training step", "steps_per_s", "steps/s"))
            what = f"EfficientAD-{r['size'].upper()} {kind} {r['precision']}, batch {r['batch']}"
            met = "—"
            if theirs and r["size"] == "s" and r["precision"] == "fp32" and record["device"] == "cpu":
                met = f"≥2×: {'yes' if r['speedup'] >= 2 else 'no'}"
            out.append([what, record["device"], f"{_t(ours['median_s'])} ({ours[rate]:.2f} {unit})",
                        f"{_t(tm)} ({theirs[rate]:.2f} {unit})" if theirs else "—", _x(r.get("speedup")), met])
        elif name == "scoring":
            ref = "anomalib" if r["method"] == "patchcore" else "official loop"
            what = (f"{'PatchCore' if r['method'] == 'patchcore' else 'PNI'} scoring, batch {r['batch']}, "
                    f"{r['image_size']}², bank {r['bank']:,}×{r['dim']} (ref: {ref})")
            out.append([what, record["device"], f"{ours['images_per_s']:.2f} img/s",
                        f"{theirs['images_per_s']:.2f} img/s" if theirs else "—", _x(r.get("speedup")), "—"])
        elif name == "demo_dag":
            out.append([f"demo DAG, snakemake --cores {r['cores']} ({r['jobs']} jobs)", record["device"],
                        _t(r["wall_s"]), "—", "—", "—"])
    return out


def latest(name: str, records: list[dict]) -> list[dict]:
    """The last record; for scoring, also the last one of each method the last record did not run."""
    if not records:
        return []
    chosen = [records[-1]]
    if name == "scoring":
        seen = {r["method"] for r in records[-1]["results"]}
        for record in reversed(records[:-1]):
            rows = [r for r in record["results"] if r["method"] not in seen]
            if rows:
                chosen.append({**record, "results": rows})
                seen.update(r["method"] for r in rows)
    return chosen


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=bl.RECORDS)
    parser.add_argument("--history", default=None, help="a benchmark name: print all its records")
    args = parser.parse_args(argv)
    names = ["metrics", "coreset", "efficientad_inference", "efficientad_training", "scoring", "demo_dag"]
    print("| benchmark | device | anomalyflow | anomalib / reference | speedup | CPU goal |")
    print("|---|---|---|---|---|---|")
    for name in [args.history] if args.history else names:
        records = load(name, args.records)
        chosen = records if args.history else latest(name, records)
        for record in chosen:
            load_start = (record.get("loadavg_start") or [None])[0]
            for row in rows_of(record):
                print("| " + " | ".join(row) + " |")
            note = f" — {record['note']}" if record.get("note") else ""
            print(f"|  ↳ {record['date'][:16]}, {record.get('device_name', '?')}, torch {record['torch']}, "
                  f"load {load_start}, {str(record.get('git_commit'))[:12]}{note} | | | | | |")


if __name__ == "__main__":
    main()
