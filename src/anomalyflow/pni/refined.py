"""PNI's refined model, family ``pni_refined`` (docs/methods.md C9): a trained PNI model plus its refinement network.

Application: maps are normalised as m̂ = (m − lo)/(hi − lo) with the training range ``map_range``
(:mod:`anomalyflow.pni.refine`); pred = resize(m̂₃₂₀ + net(...)) to the crop; refined = (1 − w)·m̂ + w·pred
with w = ``blend`` (0.1, C9); the result is mapped back to PNI's units, refined·(hi − lo) + lo, so
``pni_refined`` maps are comparable with ``pni`` maps. Image score (``image_score``): ``pni`` (default) keeps
PNI's image score, the maximum of the interior patch map (C6), since C9 refines pixels only; ``map_max`` takes
the maximum of the refined map (the official analysis path, E2).

Model folder (:data:`anomalyflow.model_folder.PNI_REFINED_FOLDER`): ``refiner.pt`` (state dict),
``refiner.json`` (loss history), ``model.json`` {"family": "pni_refined", "pni_model": the PNI folder relative
to this one, "params", "map_range": [lo, hi]}.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from anomalyflow.maps import resize
from anomalyflow.model_folder import PNI_REFINED_FOLDER
from anomalyflow.params import Params, family_params
from anomalyflow.pni.model import PNI
from anomalyflow.pni.refinement_net import RefinementNet
from anomalyflow.precision import amp_dtype, autocast
from anomalyflow.state_files import load_into, load_state


def resolve_refine_params(params: Mapping | None) -> Params:
    """A ``pni_refined`` method's parameters (:func:`anomalyflow.params.family_params`: checked, unset keys from
    the schema; ``refine_size`` a multiple of the network's stride, 32). ``base``, the PNI method whose maps are
    refined, is the workflow's: the library is given that method's folder."""
    return family_params("pni_refined", params)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


class RefinedPNI:
    """A trained PNI model plus its refiner: ``predict(images) -> (scores, refined maps)``."""

    family = "pni_refined"

    def __init__(self, pni: PNI, net: RefinementNet, params: Mapping, map_range: tuple[float, float]):
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
        meta = PNI_REFINED_FOLDER.read(folder)
        pni = PNI.load(folder / meta["pni_model"], device)
        # The stored state replaces every weight: build the layers on the meta device (no initialisation,
        # no download) and adopt the stored tensors.
        with torch.device("meta"):
            net = RefinementNet("none")
        state = PNI_REFINED_FOLDER.path(folder, "refiner")
        load_into(net, load_state(state), state, assign=True)
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


__all__ = ["RefinedPNI", "normalize_images", "resize_images", "resolve_refine_params"]
