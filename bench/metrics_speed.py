"""AUPRO (fpr_limit 0.3) and pixel AUROC on 100 and 1,000 synthetic 256² maps: anomalyflow vs anomalib.

anomalyflow: :func:`anomalyflow.metrics.aupro` and :func:`anomalyflow.metrics.pixel_auroc` on numpy
arrays (the CPU path) and, when a GPU is present, on CUDA tensors. anomalib 2.7: ``anomalib.metrics``'s
AUPRO (its torchmetrics core ``_AUPRO``: update + compute, OpenCV labelling on the CPU, kornia on CUDA) and
torchmetrics' exact ``BinaryAUROC(thresholds=None)`` for pixel AUROC (what ``anomalib.metrics.AUROC``
wraps). Each clock covers one complete evaluation, region labelling included. The values must agree
(|Δ| ≤ 1e-6); the record stores both.

    python bench/metrics_speed.py                          # CPU, and GPU when present
    python bench/metrics_speed.py --device cuda --sizes 1000   # the GPU alone, 1,000 maps
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.metrics import aupro, pixel_auroc

NAME = "metrics"


def synthetic_maps(n: int, size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``masks`` bool and ``maps`` float32 ``[n, size, size]``: half the images hold 1–3 elliptic defects,
    the maps are smooth noise plus a bump inside the defects (so the curves are not trivial)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(0, n, 2):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0.1, 0.9, 2) * size
            ry, rx = rng.uniform(0.02, 0.12, 2) * size
            masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    coarse = rng.standard_normal((n, size // 8, size // 8)).astype(np.float32)
    smooth = torch.nn.functional.interpolate(torch.from_numpy(coarse)[:, None], size=(size, size), mode="bilinear",
                                             align_corners=False)[:, 0].numpy()
    maps = smooth + 0.3 * rng.standard_normal((n, size, size)).astype(np.float32) + 1.5 * masks
    return masks, maps.astype(np.float32)


def anomalib_aupro(masks: torch.Tensor, maps: torch.Tensor) -> float:
    from anomalib.metrics.aupro import _AUPRO  # anomalib.metrics.AUPRO = AnomalibMetric (batch fields) + _AUPRO

    metric = _AUPRO(fpr_limit=0.3).to(maps.device)
    metric.update(maps, masks.int())
    return float(metric.compute())


def torchmetrics_auroc(masks: torch.Tensor, maps: torch.Tensor) -> float:
    from torchmetrics.classification import BinaryAUROC

    metric = BinaryAUROC(thresholds=None).to(maps.device)
    metric.update(maps.reshape(-1), masks.reshape(-1).int())
    return float(metric.compute())


#: Clocked evaluations per side and number of maps (fewer for the larger sets: anomalib's take seconds each).
REPEATS = {100: (5, 3), 1000: (3, 1)}


def run(*, sizes=(100, 1000), devices=None, repeats=None, their_repeats=None, with_anomalib=True,
        image_size: int = 256) -> tuple[dict, list[dict]]:
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    repeats = repeats or tuple(REPEATS.get(n, (3, 1))[0] for n in sizes)
    their_repeats = their_repeats or tuple(REPEATS.get(n, (3, 1))[1] for n in sizes)
    results = []
    for n, ours_rep, theirs_rep in zip(sizes, repeats, their_repeats, strict=True):
        masks, maps = synthetic_maps(n, image_size)
        for name in devices:
            device = torch.device(name)
            if device.type == "cuda":
                m_ours, s_ours = torch.from_numpy(masks).to(device), torch.from_numpy(maps).to(device)
            else:
                m_ours, s_ours = masks, maps
            m_t, s_t = torch.from_numpy(masks).to(device), torch.from_numpy(maps).to(device)
            for metric, ours_fn, theirs_fn, theirs_name in (
                ("aupro", aupro, anomalib_aupro, "anomalib AUPRO"),
                ("pixel_auroc", pixel_auroc, torchmetrics_auroc, "torchmetrics BinaryAUROC"),
            ):
                value = {}
                with bl.PeakMemory(device) as mem:
                    times = bl.time_call(lambda f=ours_fn, a=m_ours, b=s_ours, v=value: v.__setitem__("v", f(a, b)),
                                         device, repeats=ours_rep)
                row = {"metric": metric, "maps": n, "image_size": image_size, "device": name,
                       "ours": {**bl.summary(times), "value": value["v"], "peak_bytes": mem.peak_bytes,
                                "memory_kind": mem.kind},
                       "theirs_impl": theirs_name}
                if with_anomalib:
                    with bl.PeakMemory(device) as mem:
                        t_times = bl.time_call(lambda f=theirs_fn, a=m_t, b=s_t, v=value: v.__setitem__("t", f(a, b)),
                                               device, repeats=theirs_rep, warmup=1 if n == sizes[0] else 0)
                    row["theirs"] = {**bl.summary(t_times), "value": value["t"], "peak_bytes": mem.peak_bytes,
                                     "memory_kind": mem.kind}
                    row["speedup"] = bl.ratio(row["theirs"]["median_s"], row["ours"]["median_s"])
                    row["abs_diff"] = abs(value["v"] - value["t"])
                    row["equal_1e-6"] = row["abs_diff"] <= 1e-6
                results.append(row)
                print(f"  {metric} {n} maps on {name}: ours {bl.fmt(row['ours']['median_s'], 's')}"
                      + (f", {theirs_name} {bl.fmt(row['theirs']['median_s'], 's')}" if with_anomalib else ""),
                      flush=True)
    settings = {"sizes": list(sizes), "image_size": image_size, "fpr_limit": 0.3, "devices": devices,
                "repeats_ours": list(repeats), "repeats_theirs": list(their_repeats),
                "data": "synthetic: half the maps with 1-3 elliptic defects; smooth noise + 1.5 inside defects",
                "goals_cpu": {"aupro_speedup": 3.0, "pixel_auroc_speedup": 2.0}}
    return settings, results


def table(results: list[dict]) -> None:
    rows = []
    for r in results:
        theirs = r.get("theirs")
        goal = {"aupro": 3.0, "pixel_auroc": 2.0}[r["metric"]] if r["device"] == "cpu" else None
        met = None if theirs is None or goal is None else (r["speedup"] >= goal and r["equal_1e-6"])
        rows.append([r["metric"], r["maps"], r["device"], bl.fmt(r["ours"]["median_s"], "s"),
                     bl.fmt(theirs["median_s"], "s") if theirs else "—",
                     f"{r['speedup']:.1f}×" if theirs else "—",
                     f"{r['abs_diff']:.1e}" if theirs else "—",
                     f"≥{goal:g}× {'yes' if met else 'NO'}" if met is not None else "—"])
    bl.print_table("AUPRO / pixel AUROC (anomalib: _AUPRO; torchmetrics BinaryAUROC)",
                   ["metric", "maps", "device", "ours", "anomalib", "speedup", "|Δvalue|", "goal"], rows)


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000], help="numbers of maps")
    args = parser.parse_args(argv)
    devices = None if args.device == "auto" else [args.device]
    env = bl.environment(bl.resolve_device("cpu" if devices == ["cpu"] else "auto"))
    with_anomalib = bl.anomalib_available(not args.no_anomalib)
    if args.tiny:
        sizes = (4, 6)[:len(args.sizes)]
        settings, results = run(sizes=sizes, devices=devices, repeats=(1,) * len(sizes),
                                their_repeats=(1,) * len(sizes), with_anomalib=with_anomalib, image_size=32)
    else:
        settings, results = run(sizes=tuple(args.sizes), devices=devices, with_anomalib=with_anomalib)
    table(results)
    return bl.finish(NAME, bl.resolve_device("cpu"), env, settings, results, args)


if __name__ == "__main__":
    main()
