"""PatchCore and PNI scoring: images/s including the backbone, a bank of a 200-image category.

Random-initialised backbones (nothing is downloaded) and random banks of the size a 200-image category
gives; the clock runs from the host batch to the image scores and anomaly maps on the host, after a
warm-up batch, device synchronised.

- **PatchCore** (WRN-50, layer2+layer3, 256² input, 32×32 grid → 204,800 train patches, 10% bank = 20,480
  entries, 1,536 dims on both sides). anomalyflow: :class:`anomalyflow.patchcore.PatchCore` ``predict``
  with ``embed_dim=1536`` (faiss flat index). anomalib 2.7: ``PatchcoreModel(layers=["layer2","layer3"],
  pre_trained=False)`` (timm WRN-50, ``num_neighbors=9``) with the bank set directly, eval, ``no_grad``.
  ``--search`` picks how ours searches the bank: ``auto`` (the library's choice: faiss's GPU index on CUDA
  where the installed faiss has GPU support, else torch), ``faiss-gpu`` or ``torch`` (chunked matmuls on the
  device); one row each (a ``faiss-gpu`` row says why when there is none).
- **PNI** (WRN-101, 480² crop, 60×60 grid, 5×5 aggregation, 1,024 dims, neighbourhood MLP 10×2048 on
  80·1,024 inputs, |C_dist| = 2,048; C_emb = ``--pni-fraction`` of the 200×56² interior patches, PNI's own
  default 1% = 6,272 entries). anomaly has no PNI, so the comparison is a direct per-image transcription
  of the official algorithm: per image, its neighbourhood vectors materialised (as the official code
  does), the MLP, a faiss search of every patch against the whole C_emb with k = |C_emb| (sorted, as the
  official code), and both gates read on the sorted lists (the first passing rank; vectorised over the
  image's patches with numpy where the official code loops over patches with pymp). Same backbone, MLP
  and banks on both sides; the transcription is checked to give the same patch scores.

On a CPU the PNI batch defaults to 2 (one batch of 32 would take ~10 min per side: the MLP alone is
~1.2 TFLOP per image); pass ``--pni-batch 32`` on a GPU (the default there). PNI's scoring searches in
torch whatever ``--search`` says: its gates read every bank entry's distance (k = |C_emb|, beyond faiss's
GPU limit of k ≤ 2048). The transcription's faiss search runs on the CPU (as the official code's);
``--reference-repeats`` (default: 1 on a CPU, the repeats on a GPU) and ``--reference-images`` (the first N
images of the batch: it scores one image at a time, so its rate does not depend on the batch; default all)
bound its time, ``--no-reference`` skips it.

    python bench/scoring.py [--methods patchcore pni] [--batch 32] [--pni-batch N] [--search faiss-gpu torch]
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
from anomalyflow.patches.memory import MemoryBank, faiss_gpu_available
from anomalyflow.pni.banks import Banks
from anomalyflow.pni.geometry import interior_max, patch_map_to_pixels
from anomalyflow.pni.model import PNI
from anomalyflow.pni.neighbourhood import NeighbourhoodMLP, window_offsets

NAME = "scoring"
TRAIN_IMAGES = 200


# ---------------------------------------------------------------------------------------------- PatchCore


SEARCHES = ("auto", "faiss-gpu", "torch")


def patchcore_models(device: torch.device, image_size: int, fraction: float, with_anomalib: bool,
                     backbone: str = "wide_resnet50_2"):
    """Ours without a bank (:func:`patchcore_bank` sets one per search), anomalib's with it, the random bank."""
    params = {"backbone": backbone, "weights": "none", "layers": ["layer2", "layer3"],
              "image_size": image_size, "patch_size": 3, "embed_dim": 1536, "num_neighbors": 1, "blur_sigma": 4.0}
    ours = PatchCore(params, device)
    grid = image_size // 8
    bank_size = math.floor(fraction * TRAIN_IMAGES * grid * grid)
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(bank_size, 1536, generator=generator)
    ours.grid = (grid, grid)
    theirs = None
    if with_anomalib:
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel

        theirs = PatchcoreModel(layers=["layer2", "layer3"], backbone="wide_resnet50_2", pre_trained=False)
        theirs.memory_bank = bank.clone()
        theirs = theirs.to(device).eval()
    return ours, theirs, bank


def patchcore_bank(model: PatchCore, bank: torch.Tensor, search: str) -> str | None:
    """Give ``model`` the bank searched the ``search`` way; None, or why that search is not available here."""
    if search == "faiss-gpu":
        if model.device.type != "cuda":
            return "faiss's GPU index needs a CUDA device"
        if not faiss_gpu_available():
            return "the installed faiss has no GPU support (e.g. faiss-cpu)"
    model.bank = MemoryBank(bank, model.device, faiss_gpu=search != "torch")
    return None


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
        pni_kwargs=None, with_anomalib=True, search=("auto",), reference=True, reference_repeats=None,
        reference_images=None) -> tuple[dict, list[dict]]:
    cpu = device.type == "cpu"
    repeats = repeats or (2 if cpu else 5)
    pni_batch = pni_batch or (2 if cpu else batch)
    results = []
    if "patchcore" in methods:
        ours, theirs, bank = patchcore_models(device, patchcore_size, patchcore_fraction, with_anomalib,
                                              patchcore_backbone)
        host = torch.randn(batch, 3, patchcore_size, patchcore_size, generator=torch.Generator().manual_seed(0))
        their_stats = None
        if theirs is not None:  # one anomalib measurement, compared with each of our searches
            their_stats = _measure(patchcore_theirs(theirs, host, device), device, batch, repeats, 1)
        for how in search:
            row = {"method": "patchcore", "batch": batch, "image_size": patchcore_size, "bank": len(bank),
                   "dim": 1536, "backbone": patchcore_backbone, "theirs_impl": "anomalib PatchcoreModel"}
            missing = patchcore_bank(ours, bank, how)
            if missing:
                row.update(search=how, unavailable=missing)
                print(f"  patchcore b{batch}, search {how}: not measured: {missing}", flush=True)
                results.append(row)
                continue
            row["search"] = "faiss-gpu" if ours.bank.on_faiss_gpu else "torch"
            row["ours"] = _measure(patchcore_ours(ours, host), device, batch, repeats, 1)
            if their_stats is not None:
                row["theirs"] = their_stats
                row["speedup"] = bl.ratio(their_stats["median_s"], row["ours"]["median_s"])
            results.append(row)
            _say(row)
        del ours, theirs
    if "pni" in methods:
        model = pni_model(device, pni_fraction, **(pni_kwargs or {}))
        crop = model.params["crop"]
        host = torch.randn(pni_batch, 3, crop, crop, generator=torch.Generator().manual_seed(0))
        row = {"method": "pni", "batch": pni_batch, "image_size": crop, "bank": len(model.banks.emb),
               "dim": model.params["embed_dim"], "theirs_impl": "per-image transcription of the official algorithm"}
        row["search"] = "torch"  # PNI's gates need every entry's distance: never faiss (module docstring)
        pni_repeats = 1 if cpu else repeats
        row["ours"] = _measure(pni_ours(model, host), device, pni_batch, pni_repeats, 1)
        if reference:
            official = PNIOfficialLoop(model)
            if not cpu:  # warm up on one image (cuDNN's choices for the backbone at batch 1), outside the clock
                official.step_fn(host[:1])()
            some = host[:reference_images or pni_batch]
            row["theirs"] = _measure(official.step_fn(some), device, len(some), reference_repeats or pni_repeats, 0)
            row["reference_images"] = len(some)
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
                "pni_kwargs": pni_kwargs or {}, "search": list(search), "pni_reference": reference,
                "reference_repeats": reference_repeats, "reference_images": reference_images,
                "clock": "host batch -> scores and maps on the host"}
    return settings, results


def _say(row: dict) -> None:
    theirs = row.get("theirs")
    print(f"  {row['method']} b{row['batch']} ({row['search']} search): ours {row['ours']['images_per_s']:.3g} img/s"
          + (f", {row['theirs_impl']} {theirs['images_per_s']:.3g} img/s" if theirs else "")
          + (f" (max |patch score diff| {row['max_abs_patch_diff']:.2e}, relative {row['max_rel_patch_diff']:.1e})"
             if "max_rel_patch_diff" in row else ""),
          flush=True)


def table(results: list[dict]) -> None:
    rows = []
    for r in results:
        theirs, ours = r.get("theirs"), r.get("ours")
        rows.append([r["method"], r.get("search", "—"), r["batch"], f"{r['image_size']}²", f"{r['bank']:,}×{r['dim']}",
                     f"{ours['images_per_s']:.3g}" if ours else f"— ({r['unavailable']})",
                     f"{theirs['images_per_s']:.3g}" if theirs else "—",
                     f"{r['speedup']:.2f}×" if theirs else "—", r["theirs_impl"] if theirs else "—",
                     bl.mib(ours.get("peak_gpu_bytes")) if ours else "—"])
    bl.print_table("Scoring throughput (images/s, backbone included)",
                   ["method", "search", "batch", "input", "bank", "ours img/s", "reference img/s", "speedup",
                    "reference", "ours GPU peak"], rows)


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["patchcore", "pni"], choices=["patchcore", "pni"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pni-batch", type=int, default=None, help="default: 2 on a CPU, --batch on a GPU")
    parser.add_argument("--pni-fraction", type=float, default=0.01)
    parser.add_argument("--search", nargs="+", choices=SEARCHES, default=["auto"],
                        help="PatchCore's bank search, one row each (default: auto, the library's choice)")
    parser.add_argument("--no-reference", action="store_true", help="skip PNI's official-loop transcription")
    parser.add_argument("--reference-repeats", type=int, default=None,
                        help="clocked passes of the transcription (default: 1 on a CPU, the repeats on a GPU)")
    parser.add_argument("--reference-images", type=int, default=None,
                        help="the transcription scores the first N images of the batch (default: all)")
    args = parser.parse_args(argv)
    shared = {"methods": args.methods, "search": tuple(args.search), "reference": not args.no_reference,
              "reference_repeats": args.reference_repeats, "reference_images": args.reference_images}
    # --tiny: small nets and crops; anomalib's PatchCore needs timm's WRN-50, so anomalyflow only
    tiny = {**shared, "batch": 2, "pni_batch": 1, "repeats": 1, "patchcore_size": 64,
            "patchcore_backbone": "resnet18", "pni_fraction": 0.05,
            "pni_kwargs": {"crop": 64, "resize_to": 64, "hidden": 32, "layers": 3, "dist_size": 16,
                           "backbone": "resnet18"},
            "with_anomalib": False, "reference_repeats": 1}
    return bl.measure(NAME, args, run, table, tiny=tiny,
                      full={**shared, "batch": args.batch, "pni_batch": args.pni_batch,
                            "pni_fraction": args.pni_fraction})


if __name__ == "__main__":
    main()
