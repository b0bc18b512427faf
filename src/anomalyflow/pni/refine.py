"""Training PNI's refinement network (docs/methods.md C9): the ``fit`` stage of family ``pni_refined``.

Training data (the paper: synthetic anomalies; the official repository ships none, E4): training normals
through PNI's geometry, each with one synthetic defect (:mod:`anomalyflow.pni.synthetic_anomalies`),
scored by the trained PNI model. Their maps and masks are the refiner's inputs and targets.

Target scale: maps are normalised as m̂ = (m − lo)/(hi − lo), with lo and hi the minimum and maximum of
the PNI maps of these synthetic *training* images (the official pipeline normalises with the test set's
min and max, C7; E3). The target is the mask in that range: 1 on defect pixels, 0 elsewhere. Image and
normalised map are resized (bilinear) to ``refine_size`` (320; a multiple of 32), the mask by nearest.

Training: refined = m̂ + net(image, m̂); loss of :func:`~anomalyflow.pni.refinement_net.refinement_loss`;
Adam lr 1e-4, batch 8, ``iterations`` steps on seeded shuffles. The official train-mode augmentations
(flip, rotation, lighting) are not used: every sample is already a fresh random defect. The trained model
is :class:`anomalyflow.pni.refined.RefinedPNI`, whose folder this stage writes.
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
from anomalyflow.data.loader import load_images
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.maps import resize
from anomalyflow.model_folder import PNI_REFINED_FOLDER
from anomalyflow.pni.geometry import pni_transform
from anomalyflow.pni.model import PNI
from anomalyflow.pni.refined import normalize_images, resize_images, resolve_refine_params
from anomalyflow.pni.refinement_net import RefinementNet, refinement_loss
from anomalyflow.pni.synthetic_anomalies import synthesize
from anomalyflow.precision import amp_dtype, autocast, grad_scaler, scaled_step

log = get_logger(__name__)


@torch.no_grad()
def pni_maps(model: PNI, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """PNI maps ``[S, H, W]`` (CPU) of un-normalised images ``[S, 3, H, W]`` in [0, 1] (batches halve on OOM)."""

    def maps(batch: torch.Tensor) -> torch.Tensor:
        return model.predict(normalize_images(batch.to(model.device)))[1].float().cpu()

    return torch.cat([out for _, out in AdaptiveBatch(batch_size, what="PNI maps of synthetic anomalies").run(
        maps, images)])


def fit_pni_refined(samples_path: str | os.PathLike, pni_model_dir: str | os.PathLike, out_dir: str | os.PathLike,
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
    history = train_refinement_net(net, images, inputs, targets, iterations=p["iterations"], batch_size=p["batch_size"],
                          lr=p["lr"], seed=p["seed"], device=device, amp=p["amp"], log_every=p["log_every"])
    folder = Path(out_dir)
    save_torch(PNI_REFINED_FOLDER.path(folder, "refiner"), {k: v.detach().cpu() for k, v in net.state_dict().items()})
    write_json(PNI_REFINED_FOLDER.path(folder, "history"), {"history": history, "synthetic": len(synthetic.images),
                                                            "kinds": [r["kind"] for r in synthetic.records]})
    PNI_REFINED_FOLDER.write(folder, {"pni_model": os.path.relpath(Path(pni_model_dir).resolve(), folder.resolve()),
                                      "params": p, "map_range": [lo, hi]})
    return history


def train_refinement_net(net: RefinementNet, images: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, *,
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
        scaled_step(loss, optimiser, scaler)
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


__all__ = ["fit_pni_refined", "pni_maps", "train_refinement_net"]
