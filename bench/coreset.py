"""Greedy k-center coreset: time and peak memory on random features: anomalyflow vs anomalib's KCenterGreedy.

Cases (random float32 features, standard normal, seed 0):

- N = 200,000 × 1,536, 10% and 1% (anomalyflow only; anomalib's 10% would take ~50 min on 2 CPU cores);
- N = 204,800 × 1,536 (a 200-image category of 32×32 WRN-50 patches), 1%: both. anomalib runs once
  (``--their-repeats``), ~5 min on 2 CPU cores.

Equal work: both project to the same Johnson–Lindenstrauss dimension (sklearn's rule with eps 0.9, what
anomalib's ``SparseRandomProjection(eps=0.9)`` picks: 301 for 204,800 points), both select the random
start as the first centre (``include_start=True``; anomalib ≥ 2.6 does too). anomalyflow:
:func:`anomalyflow.patches.coreset.greedy_coreset` (dense Gaussian projection, chunked ‖x‖² − 2x·c + ‖c‖²
updates), with the projected points stored as float32 and, on the CPU, also as int8 codes
(``storage="int8"``, what the workflow's ``coreset_storage: auto`` picks there; its selections cover the
features as well as float32's: ``bench/coreset_quality.py``). anomalib 2.7:
``KCenterGreedy(embedding, sampling_ratio).select_coreset_idxs()`` from ``anomalib.models.components``
(sparse projection, ``torch.linalg.norm(features − c)`` per step). The clock includes the projection;
the features are already in memory (on the device for a GPU run).

Peak memory: CUDA ``max_memory_allocated`` on a GPU; on the CPU the increase of the process's resident
set over the call (sampled every 5 ms).

    python bench/coreset.py [--their-repeats 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.patches.coreset import coreset_size, greedy_coreset
from anomalyflow.pni.banks import jl_dimension

NAME = "coreset"
CASES = [  # (N, D, fraction, compare with anomalib)
    (200_000, 1536, 0.10, False),
    (200_000, 1536, 0.01, False),
    (204_800, 1536, 0.01, True),
]


def features(n: int, dim: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=generator).to(device)


def ours(data: torch.Tensor, fraction: float, projection: int, storage: str) -> int:
    n = coreset_size(len(data), fraction)
    return len(greedy_coreset(data, n, projection_dim=projection, seed=0, device=data.device, storage=storage))


def storages(device: torch.device) -> list[str]:
    """float32 everywhere; int8 where ``coreset_storage: auto`` uses it (the CPU)."""
    return ["float32", "int8"] if device.type == "cpu" else ["float32"]


def theirs(data: torch.Tensor, fraction: float) -> int:
    from anomalib.models.components import KCenterGreedy

    torch.manual_seed(0)
    return len(KCenterGreedy(embedding=data, sampling_ratio=fraction).select_coreset_idxs())


def run(device: torch.device, *, cases=CASES, repeats: int | None = None, their_repeats: int = 1,
        with_anomalib: bool = True) -> tuple[dict, list[dict]]:
    if repeats is None:
        repeats = 2
    if with_anomalib:
        import anomalib.models.components  # noqa: F401  (its import takes seconds: never inside a clock)
    results = []
    for n, dim, fraction, compare in cases:
        data = features(n, dim, device)
        projection = jl_dimension(n)
        k = coreset_size(n, fraction)
        if device.type == "cuda":  # one small selection per side first: CUDA's first launches stay off the clock
            ours(data[:20_480], 0.01, jl_dimension(20_480), "float32")
            if compare and with_anomalib:
                theirs(data[:20_480], 0.01)
        # 10% is 10x the steps of 1%: one repeat is enough there (and keeps the run short on a CPU).
        reps = 1 if fraction >= 0.1 and device.type == "cpu" else repeats
        their_stats = None
        if compare and with_anomalib:
            with bl.PeakMemory(device) as mem:
                t_times = bl.time_call(lambda d=data, f=fraction: theirs(d, f), device, repeats=their_repeats,
                                       warmup=0)
            their_stats = {**bl.summary(t_times), "peak_bytes": mem.peak_bytes, "memory_kind": mem.kind}
        for storage in storages(device):
            row = {"n": n, "dim": dim, "fraction": fraction, "k": k, "projection_dim": projection, "storage": storage}
            with bl.PeakMemory(device) as mem:
                times = bl.time_call(lambda d=data, f=fraction, p=projection, s=storage: ours(d, f, p, s), device,
                                     repeats=reps, warmup=0)
            row["ours"] = {**bl.summary(times), "peak_bytes": mem.peak_bytes, "memory_kind": mem.kind}
            if their_stats is not None:  # one anomalib measurement, compared with each storage
                row["theirs"] = their_stats
                row["speedup"] = bl.ratio(their_stats["median_s"], row["ours"]["median_s"])
            results.append(row)
            print(f"  {n:,}×{dim} {fraction:.0%} ({k:,} picks, {storage}): ours {bl.fmt(row['ours']['median_s'], 's')}"
                  + (f", anomalib {bl.fmt(their_stats['median_s'], 's')}" if their_stats else ""), flush=True)
        del data
    settings = {"cases": [list(c) for c in cases], "repeats_ours": repeats, "repeats_theirs": their_repeats,
                "projection": "JL dimension (eps 0.9) on both sides", "include_start": True,
                "goal_cpu": "1% of 204,800x1,536 >= 10x faster than anomalib KCenterGreedy"}
    return settings, results


def table(results: list[dict]) -> None:
    rows = []
    for r in results:
        theirs = r.get("theirs")
        goal = None
        if theirs and r["n"] == 204_800 and r["fraction"] == 0.01:
            goal = "≥10× " + ("yes" if r["speedup"] >= 10 else "NO")
        rows.append([f"{r['n']:,}×{r['dim']:,}", f"{r['fraction']:.0%}", f"{r['k']:,}", r["projection_dim"],
                     r.get("storage", "float32"), bl.fmt(r["ours"]["median_s"], "s"), bl.mib(r["ours"]["peak_bytes"]),
                     bl.fmt(theirs["median_s"], "s") if theirs else "—",
                     bl.mib(theirs["peak_bytes"]) if theirs else "—",
                     f"{r['speedup']:.1f}×" if theirs else "—", goal or "—"])
    bl.print_table("Greedy coreset (peak = CUDA max allocated, or CPU RSS increase)",
                   ["features", "fraction", "picks", "proj", "storage", "ours", "ours peak", "anomalib",
                    "anomalib peak", "speedup", "goal"], rows)



def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="anomalyflow repeats (default 2; 1 for 10%% on CPU)")
    parser.add_argument("--their-repeats", type=int, default=1)
    parser.add_argument("--case", action="append", default=None, metavar="N:FRACTION",
                        help="only these cases of 1,536-d features, e.g. 204800:0.01 (repeatable)")
    args = parser.parse_args(argv)
    cases = CASES
    if args.case:
        cases = [(int(n), 1536, float(f), int(n) == 204_800) for n, f in (c.split(":") for c in args.case)]
    return bl.measure(NAME, args, run, table, tiny={"cases": [(2000, 64, 0.01, True)], "repeats": 1},
                      full={"cases": cases, "repeats": args.repeats, "their_repeats": args.their_repeats})


if __name__ == "__main__":
    main()
