"""PatchCore baseline (Roth et al., CVPR 2022): a coreset memory bank of locally aware patch features.

Fit: patch features of every training normal (:mod:`anomalyflow.patches.features`), greedy k-center
coreset (:mod:`anomalyflow.patches.coreset`), stored as an exact faiss index. Score: each test patch's
mean distance to its ``num_neighbors`` nearest bank entries gives the patch map; the image score is
the map's maximum (before upsampling, as PatchCore does); the map is resized to the input size and
blurred with σ = ``blur_sigma``. PNI extends this with position and neighbourhood terms.

Model folder (:data:`anomalyflow.model_folder.PATCHCORE_FOLDER`): ``memory.faiss`` (the bank) and ``model.json``
(family, parameters, feature grid).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from anomalyflow.batching import map_batches
from anomalyflow.data.loader import image_transform
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.device import resolve_device
from anomalyflow.errors import NumericalError
from anomalyflow.frames import FULL_FRAME
from anomalyflow.logs import get_logger
from anomalyflow.maps import gaussian_blur, resize
from anomalyflow.model_folder import PATCHCORE_FOLDER
from anomalyflow.params import family_params
from anomalyflow.patches.coreset import coreset_size, greedy_coreset
from anomalyflow.patches.features import PatchFeatures
from anomalyflow.patches.memory import MemoryBank

log = get_logger(__name__)

class PatchCore:
    """Fit on normal images, then score batches of images: ``predict(images) -> (scores, maps)``."""

    family = "patchcore"

    def __init__(self, params: Mapping | None = None, device: str | torch.device = "cpu"):
        """``params``: a ``patchcore`` method's config entry (:func:`anomalyflow.params.family_params`: checked,
        unset keys from the schema); raises :class:`~anomalyflow.errors.ConfigError` for an unknown key."""
        self.params = family_params("patchcore", params)
        self.device = resolve_device(device)  # "auto" too: a scoring script passes the config's device
        p = self.params
        self.features = PatchFeatures(p["backbone"], p["layers"], weights=p["weights"], patch_size=p["patch_size"],
                                      embed_dim=p["embed_dim"]).to(self.device)
        self.bank: MemoryBank | None = None
        self.grid: tuple[int, int] | None = None

    def transform(self):
        return image_transform(self.params["image_size"])

    @staticmethod
    def map_frame(height: int, width: int):
        """Maps cover the whole image, stretched to a square like the input (:mod:`anomalyflow.frames`)."""
        return FULL_FRAME

    @torch.no_grad()
    def embed(self, paths, *, num_workers: int = 0, desc: str | None = "features") -> torch.Tensor:
        """Patch features of the images, ``[N, h, w, E]`` on the CPU (the batch halves on CUDA out-of-memory)."""
        chunks = [features for _, features in map_batches(lambda batch: self.features(batch).float().cpu(), paths,
                                                           self.transform(), self.params["batch_size"],
                                                           device=self.device, num_workers=num_workers, desc=desc,
                                                           what="PatchCore features")]
        return torch.cat(chunks)

    def fit(self, train_paths, *, num_workers: int = 0) -> PatchCore:
        torch.manual_seed(self.params["seed"])
        features = self.embed(train_paths, num_workers=num_workers, desc="train features")
        self.grid = tuple(features.shape[1:3])
        flat = features.reshape(-1, features.shape[-1])
        if not torch.isfinite(flat).all():
            raise NumericalError("the backbone produced non-finite features on the training images")
        n = coreset_size(len(flat), self.params["coreset_fraction"])
        log.info("coreset: %d of %d patch features (%.1f%%)", n, len(flat), 100 * n / len(flat))
        picks = greedy_coreset(flat, n, projection_dim=self.params["coreset_projection"], seed=self.params["seed"],
                               device=self.device, progress=True, storage=self.params["coreset_storage"])
        self.bank = MemoryBank(flat[torch.from_numpy(picks)], self.device)
        return self

    def save(self, model_dir: str | os.PathLike) -> None:
        self.bank.save(PATCHCORE_FOLDER.path(model_dir, "bank"))
        PATCHCORE_FOLDER.write(model_dir, {"params": self.params, "grid": list(self.grid), "bank_size": len(self.bank)})

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> PatchCore:
        meta = PATCHCORE_FOLDER.read(model_dir)
        model = cls(meta["params"], device)
        model.grid = tuple(meta["grid"])
        model.bank = MemoryBank.load(PATCHCORE_FOLDER.path(model_dir, "bank"), model.device)
        return model

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Image scores ``[B]`` and anomaly maps ``[B, H, W]`` (input resolution) for normalised images."""
        features = self.features(images.to(self.device))
        b, h, w, e = features.shape
        distances, _ = self.bank.search(features.reshape(-1, e), self.params["num_neighbors"])
        patch = torch.from_numpy(distances.mean(axis=1)).reshape(b, h, w).to(self.device)
        scores = patch.reshape(b, -1).amax(dim=1).cpu().numpy()
        maps = gaussian_blur(resize(patch, tuple(images.shape[-2:])), self.params["blur_sigma"])
        return scores, maps


def fit_patchcore(samples_path: str | os.PathLike, model_dir: str | os.PathLike, params: dict, *,
                  device: str | torch.device = "auto", num_workers: int = 0) -> PatchCore:
    """Fit on the category's training normals and write the model folder."""
    rows = fit_rows(read_samples(samples_path), "train", purpose="PatchCore memory bank")
    model = PatchCore(params, resolve_device(device)).fit(rows["path"].tolist(), num_workers=num_workers)
    model.save(model_dir)
    return model
