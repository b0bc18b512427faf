"""PatchCore and PNI scoring: images/s including the backbone, a bank of a 200-image category.

Random-initialised backbones (nothing is downloaded) and random banks of the size a 200-image category
gives; the clock runs from the host batch to the image scores and anomaly maps on the host, after a
warm-up batch, device synchronised.

- **PatchCore** (WRN-50, layer2+layer3, 256² input, 32×32 grid → 204,800 train patches, 10% bank = 20,480
  entries, 1,536 dims on both sides). anomalyflow: :class:`anomalyflow.patchcore.PatchCore` ``predict``
  with ``embed_dim=1536`` (faiss flat index). anomalib 2.7: ``PatchcoreModel(layers=["layer2","layer3"],
  pre_trained=False)`` (timm WRN-50, ``num_neighbors=9``) with the bank set directly, eval, ``no_grad``.
- **PNI** (WRN-101, 480² crop, 60×60 grid, 5×5 aggregation, 1,024 dims, neighbourhood MLP 10×2048 on
  80·1,024 inputs, |C_dist| = 2,048; C_emb = ``--pni-fraction`` of the 200×56² interior patches, PNI's own
  default 1% = 6,272 entries). anomaly has no PNI, so the comparison is a direct per-image transcription
  of the official algorithm: per image, its neighbourhood vectors materialised (as the official code
  does), the MLP, a faiss search of every patch against the whole C_emb with k = |C_emb| (sorted, as the
  official code), and both gates read on the sorted lists (the first passing rank; vectorised over the
  image's patches with numpy where the official code loops over patches with pymp). Same backbone, MLP
  and banks on both sides; the transcription is checked to give the same patch scores.

On a CPU the PNI batch defaults to 2 (one batch of 32 would take ~10 min per side: the MLP alone is
~1.2 TFLOP per image); pass ``--pni-batch 32`` on a GPU (the default there).

    python bench/scoring.py [--methods patchcore pni] [--batch 32] [--pni-batch N]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.patchcore import PatchCore
from anomalyflow.pni.banks import Banks
from anomalyflow.pni.geometry import interior_max, patch_map_to_pixels
from anomalyflow.pni.memory import MemoryBank
from anomalyflow.pni.model import PNI
from anomalyflow.pni.neighbourhood import NeighbourhoodMLP, window_offsets

NAME = "scoring"
TRAIN_IMAGES = 200


# ---------------------------------------------------------------------------------------------- PatchCore


def patchcore_models(device: torch.device, image_size: int, fraction: float, with_anomalib: bool,
                     backbone: str = "wide_resnet50_2"):
    params = {"backbone": backbone, "weights": "none", "layers": ["layer2", "layer3"],
              "image_size": image_size, "patch_size": 3, "embed_dim": 1536, "num_neighbors": 1, "blur_sigma": 4.0}
    ours = PatchCore(params, device)
    grid = image_size // 8
    bank_size = math.floor(fraction * TRAIN_IMAGES * grid * grid)
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(bank_size, 1536, generator=generator)
    ours.bank = MemoryBank(bank, device)
    ours.grid = (grid, grid)
    theirs = None
    if with_anomalib:
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel

        theirs = PatchcoreModel(layers=["layer2", "layer3"], backbone="wide_resnet50_2", pre_trained=False)
        theirs.memory_bank = bank.clone()
        theirs = theirs.to(device).eval()
    return ours, theirs, bank_size


def patchcore_ours(model: PatchCore, host: torch.Tensor):
    def step():
        scores, maps = model.predict(host)
        return scores, maps.cpu()
    return step


def patchcore_theirs(model, host: torch.Tensor, device: torch.device):
    def step():
        with torch.no_grad():
            out = model(host.to(device, non_blocking=True))
        return out.pred_score.cpu(), out.anomaly_map.cpu()
    return step


# ---------------------------------------------------------------------------------------------- PNI


def pni_model(device: torch.device, fraction: float, *, crop: int = 480, resize_to: int = 512, hidden: int = 2048,
              layers: int = 10, dist_size: int = 2048, backbone: str = "wide_resnet101_2") -> PNI:
    params = {"backbone": backbone, "weights": "none", "resize": resize_to, "crop": crop, "mlp_hidden": hidden,
              "mlp_layers": layers, "dist_coreset_size": dist_size, "coreset_fraction": fraction}
    model = PNI(params, device)
    p = model.params
    grid = crop // 8
    edge = model.edge
    interior = (grid - 2 * edge) ** 2
    n_emb = max(math.floor(fraction * TRAIN_IMAGES * interior), 1)
    n_edge = max(math.floor(fraction * TRAIN_IMAGES * grid * grid), 1)
    generator = torch.Generator().manual_seed(0)
    emb = torch.randn(max(n_emb, dist_size), p["embed_dim"], generator=generator)
    model.grid = (grid, grid)
    model.banks = Banks(emb=emb[:n_emb].to(device), dist=emb[:dist_size].to(device),
                        emb_edge=torch.randn(n_edge, p["embed_dim"], generator=generator).to(device))
    # Vote counts: a few positions vote for each entry (a sparse histogram, as real ones are).
    counts = {}
    for name, size in (("no_edge", n_emb), ("with_edge", n_edge)):
        votes = torch.zeros(grid * grid, size)
        votes[torch.randint(0, grid * grid, (size * 20,), generator=generator),
              torch.randint(0, size, (size * 20,), generator=generator)] = 1.0
        counts[name] = votes.to(device)
    model.counts = counts
    torch.manual_seed(0)
    model.mlp = NeighbourhoodMLP(len(window_offsets(p["dist_padding"])) * p["embed_dim"], hidden, layers, dist_size,
                                 p["mlp_dropout"]).to(device).eval()
    _ = model.features  # build the backbone outside the clock
    return model


def pni_ours(model: PNI, host: torch.Tensor):
    def step():
        scores, maps = model.predict(host)
        return scores, maps.cpu()
    return step


class PNIOfficialLoop:
    """The official scoring algorithm, image by image (see the module docstring)."""

    def __init__(self, model: PNI):
        import faiss

        self.model, p = model, model.params
        c = model.derived()
        self.index = faiss.IndexFlatL2(model.banks.emb.shape[1])
        self.index.add(np.ascontiguousarray(model.banks.emb.float().cpu().numpy()))
        self.parent = c["parent"].cpu().numpy()
        self.pos_pass = c["pos_pass"].cpu().numpy()
        self.tau = c["tau_nb"]
        self.radius, self.temperature = p["dist_padding"], p["temperature"]
        self.offsets = window_offsets(self.radius)

    def neighbourhoods(self, features: torch.Tensor) -> torch.Tensor:
        """``[h·w, 80·E]``: every position's window (zero padded), materialised as the official code does."""
        h, w, _ = features.shape
        r = self.radius
        padded = F.pad(features, (0, 0, r, r, r, r))
        return torch.stack([padded[r + dy:r + dy + h, r + dx:r + dx + w] for dy, dx in self.offsets],
                           dim=2).reshape(h * w, -1)

    @torch.no_grad()
    def patch_scores(self, features: torch.Tensor) -> torch.Tensor:
        h, w, e = features.shape
        inputs = self.neighbourhoods(features)
        logits = torch.cat([self.model.mlp(inputs[i:i + 2048]).float() for i in range(0, len(inputs), 2048)])
        q_nb = torch.softmax(logits / self.temperature, dim=1).cpu().numpy()
        queries = np.ascontiguousarray(features.reshape(-1, e).float().cpu().numpy())
        squared, ids = self.index.search(queries, self.index.ntotal)  # every entry, nearest first
        dist = np.sqrt(np.maximum(squared, 0.0))
        rows = np.arange(len(queries))[:, None]
        nb_rank = q_nb[rows, self.parent[ids]] > self.tau
        pos_rank = self.pos_pass[rows, ids]
        out = []
        for rank_gate in (nb_rank, pos_rank):
            rank_gate[:, -1] = True  # the farthest entry always passes
            out.append(dist[rows[:, 0], rank_gate.argmax(axis=1)])
        gamma = self.model.params["prob_gamma"]
        nb, pos = (torch.from_numpy(gamma * d - math.log(gamma)).float().view(h, w) for d in out)
        return 0.5 * (nb + pos)

    def step_fn(self, host: torch.Tensor):
        model = self.model

        def step():
            scores, maps = [], []
            for image in host:
                features = model.features(image[None].to(model.device)).float()[0]
                patch = self.patch_scores(features)[None]
                scores.append(float(interior_max(patch, model.edge)[0]))
                maps.append(patch_map_to_pixels(patch, model.edge, tuple(host.shape[-2:]),
                                                model.params["blur_sigma"]).cpu())
            return np.array(scores), torch.cat(maps)
        return step


# ---------------------------------------------------------------------------------------------- runner


def _measure(fn, device, batch, repeats, warmup) -> dict:
    with bl.gpu_peak(device) as peak:
        times = bl.time_call(fn, device, repeats=repeats, warmup=warmup)
    stats = bl.summary(times)
    stats["images_per_s"] = batch / stats["median_s"]
    stats.update(peak)
    return stats


def run(device: torch.device, *, methods=("patchcore", "pni"), batch=32, pni_batch=None, repeats=None,
        patchcore_size=256, patchcore_fraction=0.1, patchcore_backbone="wide_resnet50_2", pni_fraction=0.01,
        pni_kwargs=None, with_anomalib=True) -> tuple[dict, list[dict]]:
    cpu = device.type == "cpu"
    repeats = repeats or (2 if cpu else 5)
    pni_batch = pni_batch or (2 if cpu else batch)
    results = []
    if "patchcore" in methods:
        ours, theirs, bank_size = patchcore_models(device, patchcore_size, patchcore_fraction, with_anomalib,
                                                     patchcore_backbone)
        host = torch.randn(batch, 3, patchcore_size, patchcore_size, generator=torch.Generator().manual_seed(0))
        row = {"method": "patchcore", "batch": batch, "image_size": patchcore_size, "bank": bank_size, "dim": 1536,
               "backbone": patchcore_backbone,
               "theirs_impl": "anomalib PatchcoreModel"}
        row["ours"] = _measure(patchcore_ours(ours, host), device, batch, repeats, 1)
        if theirs is not None:
            row["theirs"] = _measure(patchcore_theirs(theirs, host, device), device, batch, repeats, 1)
            row["speedup"] = bl.ratio(row["theirs"]["median_s"], row["ours"]["median_s"])
        results.append(row)
        _say(row)
        del ours, theirs
    if "pni" in methods:
        model = pni_model(device, pni_fraction, **(pni_kwargs or {}))
        crop = model.params["crop"]
        host = torch.randn(pni_batch, 3, crop, crop, generator=torch.Generator().manual_seed(0))
        row = {"method": "pni", "batch": pni_batch, "image_size": crop, "bank": len(model.banks.emb),
               "dim": model.params["embed_dim"], "theirs_impl": "per-image transcription of the official algorithm"}
        pni_repeats = 1 if cpu else repeats
        row["ours"] = _measure(pni_ours(model, host), device, pni_batch, pni_repeats, 1)
        official = PNIOfficialLoop(model)
        row["theirs"] = _measure(official.step_fn(host), device, pni_batch, pni_repeats, 0 if cpu else 1)
        row["speedup"] = bl.ratio(row["theirs"]["median_s"], row["ours"]["median_s"])
        # Same patch scores on one image: the transcription is the algorithm, not an approximation.
        with torch.no_grad():
            features = model.features(host[:1].to(device)).float()
            mine = model.patch_map(host[:1])[0][0].cpu()
            ref = official.patch_scores(features[0])
        row["max_abs_patch_diff"] = float((mine - ref).abs().max())
        # Random-init features give scores of ~1e5: float32 rounding alone is ~0.1 there.
        row["max_rel_patch_diff"] = float(((mine - ref).abs() / ref.abs().clamp_min(1e-12)).max())
        results.append(row)
        _say(row)
    settings = {"methods": list(methods), "batch": batch, "pni_batch": pni_batch, "repeats": repeats,
                "train_images": TRAIN_IMAGES, "patchcore_fraction": patchcore_fraction, "pni_fraction": pni_fraction,
                "pni_kwargs": pni_kwargs or {}, "clock": "host batch -> scores and maps on the host"}
    return settings, results


def _say(row: dict) -> None:
    theirs = row.get("theirs")
    print(f"  {row['method']} b{row['batch']}: ours {row['ours']['images_per_s']:.3g} img/s"
          + (f", {row['theirs_impl']} {theirs['images_per_s']:.3g} img/s" if theirs else "")
          + (f" (max |patch score diff| {row['max_abs_patch_diff']:.2e}, relative {row['max_rel_patch_diff']:.1e})"
             if "max_rel_patch_diff" in row else ""),
          flush=True)


def table(results: list[dict]) -> None:
    rows = []
    for r in results:
        theirs = r.get("theirs")
        rows.append([r["method"], r["batch"], f"{r['image_size']}²", f"{r['bank']:,}×{r['dim']}",
                     f"{r['ours']['images_per_s']:.3g}", f"{theirs['images_per_s']:.3g}" if theirs else "—",
                     f"{r['speedup']:.2f}×" if theirs else "—", r["theirs_impl"] if theirs else "—"])
    bl.print_table("Scoring throughput (images/s, backbone included)",
                   ["method", "batch", "input", "bank", "ours img/s", "reference img/s", "speedup", "reference"], rows)


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["patchcore", "pni"], choices=["patchcore", "pni"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pni-batch", type=int, default=None, help="default: 2 on a CPU, --batch on a GPU")
    parser.add_argument("--pni-fraction", type=float, default=0.01)
    args = parser.parse_args(argv)
    # --tiny: small nets and crops; anomalib's PatchCore needs timm's WRN-50, so anomalyflow only
    tiny = {"methods": args.methods, "batch": 2, "pni_batch": 1, "repeats": 1, "patchcore_size": 64,
            "patchcore_backbone": "resnet18", "pni_fraction": 0.05,
            "pni_kwargs": {"crop": 64, "resize_to": 64, "hidden": 32, "layers": 3, "dist_size": 16,
                           "backbone": "resnet18"},
            "with_anomalib": False}
    return bl.measure(NAME, args, run, table, tiny=tiny,
                      full={"methods": args.methods, "batch": args.batch, "pni_batch": args.pni_batch,
                            "pni_fraction": args.pni_fraction})


if __name__ == "__main__":
    main()
