"""Coreset quality: does int8 storage of the projected points select coresets as good as float32's?

A coreset is good when every feature has a selected point close to it. For each selection the script
measures, in the **original** feature space, the coverage radius (the largest distance from a feature
to its nearest selected point: what greedy k-center minimises) and the mean of those distances (what a
memory bank's nearest-neighbour score sees). Each storage runs with several projection seeds, so the
float32 seed-to-seed spread shows how much a selection moves for reasons that are already accepted; the
exact greedy on the unprojected features is the reference.

Data (seed 0): ``mixture`` — 100 clusters with Zipf-like sizes on a 64-d subspace of 1,536-d space plus
per-point isotropic noise (closer to CNN patch features: clustered, low intrinsic dimension);
``gaussian`` — standard normal 1,536-d (the speed benchmark's data: no structure, all distances alike).
No anomalib side: this measures a choice inside anomalyflow, not a speed.

    python bench/coreset_quality.py [--n 40000] [--seeds 4]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.patches.coreset import coreset_size, greedy_coreset
from anomalyflow.pni.banks import jl_dimension

NAME = "coreset_quality"


def dataset(kind: str, n: int, dim: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if kind == "gaussian":
        return torch.randn(n, dim, generator=generator)
    centres = torch.randn(100, 64, generator=generator) @ torch.randn(64, dim, generator=generator) / 8
    weights = 1.0 / torch.arange(1, 101, dtype=torch.float64)
    members = torch.multinomial(weights, n, replacement=True, generator=generator)
    spread = torch.rand(n, 1, generator=generator)
    return centres[members] + 0.3 * spread * torch.randn(n, dim, generator=generator)


def coverage(features: torch.Tensor, picks: np.ndarray, block: int = 1024) -> tuple[float, float]:
    """(max, mean) over the features of the distance to the nearest selected point."""
    chosen = features[torch.from_numpy(picks)]
    sq = features.pow(2).sum(1)
    best = torch.full((len(features),), float("inf"))
    for begin in range(0, len(chosen), block):
        part = chosen[begin:begin + block]
        dist = torch.addmm(sq[:, None] + part.pow(2).sum(1)[None], features, part.T, alpha=-2.0)
        torch.minimum(best, dist.min(1).values, out=best)
    radius = best.clamp_min(0).sqrt()
    return float(radius.max()), float(radius.mean())


def run(*, n: int, dim: int = 1536, fractions=(0.01, 0.1), seeds: int = 4,
        kinds=("mixture", "gaussian")) -> tuple[dict, list[dict]]:
    projection = jl_dimension(n)
    results = []
    for kind in kinds:
        features = dataset(kind, n, dim)
        for fraction in fractions:
            k = coreset_size(n, fraction)
            row = {"data": kind, "n": n, "dim": dim, "fraction": fraction, "k": k, "projection_dim": projection}
            for storage in ("float32", "int8"):
                values = np.array([coverage(features, greedy_coreset(features, k, projection_dim=projection,
                                                                     seed=seed, storage=storage))
                                   for seed in range(seeds)])
                row[storage] = {"max": values[:, 0].tolist(), "mean": values[:, 1].tolist()}
            exact = coverage(features, greedy_coreset(features, k, projection_dim=None, seed=0))
            row["exact"] = {"max": exact[0], "mean": exact[1]}
            results.append(row)
            print(f"  {kind} {fraction:.0%}: mean radius float32 {np.mean(row['float32']['mean']):.4f}, "
                  f"int8 {np.mean(row['int8']['mean']):.4f}, exact {row['exact']['mean']:.4f}", flush=True)
    settings = {"n": n, "dim": dim, "fractions": list(fractions), "seeds": seeds, "projection_dim": projection,
                "kinds": list(kinds), "metric": "L2 in the original space, features to nearest selected point"}
    return settings, results


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(results: list[dict]) -> None:
    rows = [[r["data"], f"{r['fraction']:.0%}", f"{r['k']:,}", spread(r["float32"]["max"]), spread(r["int8"]["max"]),
             f"{r['exact']['max']:.3f}", spread(r["float32"]["mean"]), spread(r["int8"]["mean"]),
             f"{r['exact']['mean']:.3f}"] for r in results]
    bl.print_table("Coreset coverage (distance to the nearest selected point; mean ± std over projection seeds)",
                   ["data", "fraction", "picks", "max float32", "max int8", "max exact", "mean float32",
                    "mean int8", "mean exact"], rows)


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="features per data set")
    parser.add_argument("--seeds", type=int, default=4, help="projection seeds per storage")
    args = parser.parse_args(argv)
    device = bl.resolve_device("cpu")  # int8 storage is a CPU choice; the selections do not depend on speed
    env = bl.environment(device)
    if args.tiny:
        settings, results = run(n=1000, dim=256, fractions=(0.05,), seeds=2, kinds=("mixture",))
    else:
        settings, results = run(n=args.n, seeds=args.seeds)
    table(results)
    return bl.finish(NAME, device, env, settings, results, args)


if __name__ == "__main__":
    main()
