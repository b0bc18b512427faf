"""PNI's workflow stages as single calls: a sample table and parameters in, model-folder files out.

1. :func:`fit_pni_memory` — features of the training normals, the three coresets and the position
   histograms (C2, C3, C5) → ``coreset_*.faiss``, ``position.npz``, ``memory.json``; optionally the train
   feature maps as a ``.npy`` (``[N, h, w, E]``, float16 by default) for stage 2, a temporary file.
2. :func:`fit_pni_mlp` — the neighbourhood MLP (C4) from that cache, or from features recomputed when
   there is none → ``neighbourhood.pt``, ``neighbourhood.json`` and ``model.json`` (the model is complete).
3. Scoring is the generic :func:`anomalyflow.scoring.score_category` (family ``pni``).
4. :func:`anomalyflow.pni.refine.fit_pni_refined` — the refinement network (C9, family ``pni_refined``).

Training rows come through :func:`~anomalyflow.data.table.fit_rows` (train split, good images only).
The float16 cache rounds the features that stage 2 sees (the coresets are selected on float32
features): a run with the cache and one without give slightly different MLPs; set
``feature_cache_dtype: float32`` for bit-equal runs.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from anomalyflow.atomic import atomic_path
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.device import resolve_device
from anomalyflow.errors import DataError
from anomalyflow.logs import get_logger
from anomalyflow.pni.model import PNI, feature_cache_dtype

log = get_logger(__name__)


def train_paths(samples_path: str | os.PathLike, purpose: str) -> list[str]:
    return fit_rows(read_samples(samples_path), "train", purpose=purpose)["path"].tolist()


def save_features(path: str | os.PathLike, features: torch.Tensor, dtype: str = "float16") -> None:
    """The train feature maps as ``.npy``; float32 instead of float16 if a value would overflow."""
    array = features.numpy().astype(feature_cache_dtype(dtype))
    if not np.isfinite(array).all():
        log.warning("pni: train features overflow %s; caching them as float32", dtype)
        array = features.numpy().astype(np.float32)
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def load_features(path: str | os.PathLike, n_images: int) -> torch.Tensor:
    """The cached train feature maps ``[N, h, w, E]`` in their stored dtype (the MLP stage casts per use)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: train feature cache not found; rerun the PNI memory stage") from None
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a feature cache ({error})") from None
    if array.ndim != 4 or array.shape[0] != n_images:
        raise DataError(f"{path}: holds features of shape {array.shape}, expected {n_images} train images; rerun "
                        "the PNI memory stage")
    return torch.from_numpy(np.array(array))


def fit_pni_memory(samples_path: str | os.PathLike, out_dir: str | os.PathLike, params: dict, *,
                   device: str | torch.device = "auto", num_workers: int = 0,
                   features_path: str | os.PathLike | None = None) -> PNI:
    """Stage 1: coresets and position histograms into ``out_dir``; the feature cache at ``features_path``."""
    paths = train_paths(samples_path, "PNI coresets and position histograms")
    model = PNI(params, resolve_device(device))
    features = model.fit_memory(paths, num_workers=num_workers)
    model.save_memory(out_dir)
    if features_path is not None:
        save_features(features_path, features, model.params["feature_cache_dtype"])
    return model


def fit_pni_mlp(samples_path: str | os.PathLike, model_dir: str | os.PathLike, params: dict, *,
                device: str | torch.device = "auto", num_workers: int = 0,
                features_path: str | os.PathLike | None = None) -> PNI:
    """Stage 2: the neighbourhood MLP; writes ``neighbourhood.*`` and ``model.json`` into ``model_dir``."""
    paths = train_paths(samples_path, "PNI neighbourhood MLP")
    model = PNI.load_memory(model_dir, resolve_device(device), params)
    if features_path is not None:
        features = load_features(features_path, len(paths))
    else:
        features = model.embed(paths, num_workers=num_workers, desc="train features")
    history = model.fit_mlp(features)
    # Only the new files: rewriting the memory stage's outputs would make them look newer than their rule's.
    model.save_mlp(model_dir, history)
    model.save_model_json(model_dir)
    return model


__all__ = ["fit_pni_memory", "fit_pni_mlp", "load_features", "save_features"]
