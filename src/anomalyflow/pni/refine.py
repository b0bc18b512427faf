"""Training and applying PNI's refinement network (docs/methods.md C9): stage and model class ``pni_refined``.

Training data (the paper: synthetic anomalies; the official repository ships none, E4): training normals
through PNI's geometry, each with one synthetic defect (:mod:`anomalyflow.pni.synthetic_anomalies`),
scored by the trained PNI model. Their maps and masks are the refiner's inputs and targets.

Target scale: maps are normalised as m̂ = (m − lo)/(hi − lo), with lo and hi the minimum and maximum of
the PNI maps of these synthetic *training* images (the official pipeline normalises with the test set's
min and max, C7; E3). The target is the mask in that range: 1 on defect pixels, 0 elsewhere. Image and
normalised map are resized (bilinear) to ``refine_size`` (320; a multiple of 32), the mask by nearest.

Training: refined = m̂ + net(image, m̂); loss of :func:`~anomalyflow.pni.refinement_net.refinement_loss`;
Adam lr 1e-4, batch 8, ``iterations`` steps on seeded shuffles. The official train-mode augmentations
(flip, rotation, lighting) are not used: every sample is already a fresh random defect.

Application: pred = resize(m̂₃₂₀ + net(...)) to the crop; refined = (1 − w)·m̂ + w·pred with w = ``blend``
(0.1, C9); the result is mapped back to PNI's units, refined·(hi − lo) + lo, so ``pni_refined`` maps are
comparable with ``pni`` maps. Image score (``image_score``): ``pni`` (default) keeps PNI's image score, the
maximum of the interior patch map (C6), since C9 refines pixels only; ``map_max`` takes the maximum of the
refined map (the official analysis path, E2).

Model folder: ``refiner.pt`` (state dict), ``refiner.json`` (loss history), ``model.json``
{"family": "pni_refined", "pni_model": the PNI folder relative to this one, "params", "map_range": [lo, hi]}.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from anomalyflow.atomic import save_torch, write_json
from anomalyflow.batching import AdaptiveBatch
from anomalyflow.config import load_json
from anomalyflow.data.loader import load_images
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.maps import resize
from anomalyflow.params import with_defaults
from anomalyflow.pni.geometry import pni_transform
from anomalyflow.pni.model import PNI
from anomalyflow.pni.refinement_net import STRIDE, RefinementNet, refinement_loss
from anomalyflow.pni.synthetic_anomalies import KINDS, synthesize
from anomalyflow.precision import amp_dtype, autocast, grad_scaler
from anomalyflow.state_files import load_into, load_state

log = get_logger(__name__)

REFINE_DEFAULTS = {
    "weights": "none",
    "refine_size": 320,
    "iterations": 5000,
    "batch_size": 8,
    "lr": 1e-4,
    "blend": 0.1,
    "synthetic_per_image": 2,
    "synthetic_kinds": list(KINDS),
    "synthetic_scale": [0.08, 0.3],
    "splits": ["train"],
    "image_score": "pni",
    "seed": 0,
    "amp": True,
    "log_every": 100,
}
IMAGE_SCORES = ("pni", "map_max")


def resolve_refine_params(params: dict | None) -> dict:
    # ``base`` names the PNI method whose maps are refined (the workflow resolves it to a folder).
    merged = with_defaults(params, REFINE_DEFAULTS, what="pni_refined", references=("family", "base"))
    if merged["image_score"] not in IMAGE_SCORES:
        raise ConfigError(f"refine: image_score must be one of {', '.join(IMAGE_SCORES)}, not "
                          f"{merged['image_score']!r}")
    if merged["refine_size"] % STRIDE or merged["refine_size"] < STRIDE:
        raise ConfigError(f"refine: refine_size must be a positive multiple of {STRIDE}, not {merged['refine_size']}")
    if not 0 <= merged["blend"] <= 1:
        raise ConfigError(f"refine: blend must be in [0, 1], not {merged['blend']}")
    return merged


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def pni_maps(model: PNI, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """PNI maps ``[S, H, W]`` (CPU) of un-normalised images ``[S, 3, H, W]`` in [0, 1] (batches halve on OOM)."""

    def maps(batch: torch.Tensor) -> torch.Tensor:
        return model.predict(normalize_images(batch.to(model.device)))[1].float().cpu()

    return torch.cat([out for _, out in AdaptiveBatch(batch_size, what="PNI maps of synthetic anomalies").run(
        maps, images)])


def train_refiner(samples_path: str | os.PathLike, pni_model_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  params: dict, *, device: str | torch.device = "auto", num_workers: int = 0) -> list[dict]:
    """Stage: synthetic anomalies on training normals → PNI maps → refiner; writes the ``pni_refined`` folder."""
    p = resolve_refine_params(params)
    device = resolve_device(device)
    rows = fit_rows(read_samples(samples_path), p["splits"], purpose="PNI refiner (synthetic anomalies)")
    pni = PNI.load(pni_model_dir, device)
    normals = load_images(rows["path"].tolist(), pni_transform(pni.params["resize"], pni.params["crop"],
                                                               normalize=False), num_workers=num_workers)
    count = len(normals) * int(p["synthetic_per_image"])
    if count < 1:
        raise ConfigError("refine: synthetic_per_image must be at least 1")
    synthetic = synthesize(normals, count, seed=p["seed"], kinds=tuple(p["synthetic_kinds"]),
                           scale=tuple(p["synthetic_scale"]))
    maps = pni_maps(pni, synthetic.images, pni.batch_size)
    lo, hi = float(maps.min()), float(maps.max())
    if not hi > lo:
        raise NumericalError("refine: the PNI maps of the synthetic images are constant; nothing to refine")
    size = int(p["refine_size"])
    images = resize_images(normalize_images(synthetic.images), size)
    inputs = resize((maps - lo) / (hi - lo), size).unsqueeze(1)
    targets = F.interpolate(synthetic.masks.float().unsqueeze(1), size=(size, size), mode="nearest")
    net = RefinementNet(p["weights"], init_seed=int(p["seed"])).to(device)
    history = fit_refiner(net, images, inputs, targets, iterations=p["iterations"], batch_size=p["batch_size"],
                          lr=p["lr"], seed=p["seed"], device=device, amp=p["amp"], log_every=p["log_every"])
    folder = Path(out_dir)
    save_torch(folder / "refiner.pt", {k: v.detach().cpu() for k, v in net.state_dict().items()})
    write_json(folder / "refiner.json", {"history": history, "synthetic": len(synthetic.images),
                                          "kinds": [r["kind"] for r in synthetic.records]})
    write_json(folder / "model.json", {
        "family": RefinedPNI.family, "pni_model": os.path.relpath(Path(pni_model_dir).resolve(), folder.resolve()),
        "params": p, "map_range": [lo, hi]})
    return history


def fit_refiner(net: RefinementNet, images: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, *,
                iterations: int, batch_size: int = 8, lr: float = 1e-4, seed: int = 0,
                device: torch.device | str = "cpu", amp: bool = True, log_every: int = 100) -> list[dict]:
    """Adam on ``refinement_loss(m̂ + net(x, m̂), mask)``; tensors ``[S, C, size, size]`` on any device."""
    device = torch.device(device)
    dtype = amp_dtype(device) if amp else None
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    scaler = grad_scaler(device, dtype)
    shuffle = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    net.train()
    history, running, count = [], torch.zeros((), device=device), 0
    for step in tqdm(range(1, iterations + 1), desc="refiner", unit="step", leave=False):
        # Batches walk through seeded permutations of the samples (every sample once per pass).
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(len(images), generator=shuffle)])
        index, order = order[:batch_size], order[batch_size:]
        x, amap, target = (t[index].to(device, non_blocking=True) for t in (images, inputs, targets))
        with autocast(device, dtype):
            residual = net(x, amap)
        loss = refinement_loss(amap + residual.float(), target)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        running += loss.detach()
        count += 1
        if step % log_every == 0 or step == iterations:
            mean = float(running) / count
            if not np.isfinite(mean):
                raise NumericalError("refine: the refiner's loss is not finite; lower lr")
            history.append({"step": step, "loss": mean})
            log.info("refiner step %d: loss %.5f", step, mean)
            running, count = torch.zeros((), device=device), 0
    return history


class RefinedPNI:
    """A trained PNI model plus its refiner: ``predict(images) -> (scores, refined maps)``."""

    family = "pni_refined"

    def __init__(self, pni: PNI, net: RefinementNet, params: dict, map_range: tuple[float, float]):
        self.pni = pni
        self.device = pni.device
        self.net = net.to(self.device).eval()
        self.params = resolve_refine_params(params)
        self.lo, self.hi = map_range

    @property
    def batch_size(self) -> int:
        return self.pni.batch_size

    def transform(self):
        return self.pni.transform()

    def map_frame(self, height: int, width: int):
        """PNI's centre crop of a ``height × width`` image: the refined map has PNI's geometry."""
        return self.pni.map_frame(height, width)

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> RefinedPNI:
        folder = Path(model_dir)
        meta = load_json(folder / "model.json")
        if meta.get("family") != cls.family:
            raise ConfigError(f"{folder / 'model.json'}: family {meta.get('family')!r} is not {cls.family!r}")
        pni = PNI.load(folder / meta["pni_model"], device)
        # The stored state replaces every weight: build the layers on the meta device (no initialisation,
        # no download) and adopt the stored tensors.
        with torch.device("meta"):
            net = RefinementNet("none")
        load_into(net, load_state(folder / "refiner.pt"), folder / "refiner.pt", assign=True)
        return cls(pni, net, meta["params"], tuple(meta["map_range"]))

    @torch.no_grad()
    def refine(self, images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Refined maps ``[B, H, W]`` in PNI's units from normalised images and PNI maps (C9 blend)."""
        size, w = int(self.params["refine_size"]), float(self.params["blend"])
        normalised = (maps.float() - self.lo) / (self.hi - self.lo)
        amap = resize(normalised, size).unsqueeze(1)
        dtype = amp_dtype(self.device) if self.params["amp"] else None
        with autocast(self.device, dtype):
            residual = self.net(resize_images(images.to(self.device), size), amap)
        pred = resize((amap + residual.float()).squeeze(1), tuple(maps.shape[-2:]))
        refined = (1 - w) * normalised + w * pred
        return refined * (self.hi - self.lo) + self.lo

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        scores, maps = self.pni.predict(images)
        refined = self.refine(images, maps)
        if self.params["image_score"] == "map_max":
            scores = refined.reshape(len(refined), -1).amax(1).double().cpu().numpy()
        return scores, refined


__all__ = ["REFINE_DEFAULTS", "RefinedPNI", "fit_refiner", "pni_maps", "resolve_refine_params", "train_refiner"]
