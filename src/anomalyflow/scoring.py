"""Scoring a category with any trained model: batched, one DataLoader pass, maps kept as arrays.

Every method family provides a model class with ``load(model_dir, device)``, ``transform()`` and
``predict(images) -> (scores [B], maps [B, H, W])``; ``model.json`` in the model folder names the
family. :func:`score_category` scores the validation and test images of a sample table and writes
``scores.csv`` and ``maps.npz`` (see :mod:`anomalyflow.outputs`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from anomalyflow.config import load_json
from anomalyflow.data.loader import iterate_batches
from anomalyflow.data.table import read_samples
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger
from anomalyflow.outputs import scores_table, write_maps, write_scores

log = get_logger(__name__)

MODEL_CLASSES = {
    "patchcore": "anomalyflow.patchcore:PatchCore",
    "efficientad": "anomalyflow.efficientad.model:EfficientAD",
}


def model_class(family: str):
    try:
        module, name = MODEL_CLASSES[family].split(":")
    except KeyError:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(MODEL_CLASSES)}") from None
    return getattr(importlib.import_module(module), name)


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "auto"):
    """The trained model in ``model_dir`` (any family), ready to ``predict``."""
    meta = load_json(Path(model_dir) / "model.json")
    return model_class(meta["family"]).load(model_dir, resolve_device(device))


@torch.no_grad()
def score_paths(model, paths, *, batch_size: int, num_workers: int = 0,
                desc: str | None = "scoring") -> tuple[np.ndarray, np.ndarray]:
    """Scores ``[N]`` and maps ``[N, H, W]`` (float32, CPU) of the images at ``paths``."""
    scores = np.empty(len(paths), dtype=np.float64)
    maps = None
    for rows, batch in iterate_batches(paths, model.transform(), batch_size, num_workers=num_workers,
                                       device=model.device, desc=desc):
        batch_scores, batch_maps = model.predict(batch)
        scores[rows] = batch_scores
        if maps is None:
            maps = np.empty((len(paths), *batch_maps.shape[-2:]), dtype=np.float32)
        maps[rows] = batch_maps.float().cpu().numpy()
    return scores, maps


def score_category(
    model_dir: str | os.PathLike,
    samples_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    maps_path: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    num_workers: int = 0,
) -> pd.DataFrame:
    """Score the validation and test images of a category; write ``scores.csv`` and ``maps.npz``."""
    model = load_model(model_dir, device)
    table = read_samples(samples_path)
    rows = table.loc[table["split"].isin(["validation", "test"])].reset_index(drop=True)
    batch_size = batch_size or getattr(model, "batch_size", None) or model.params.get("batch_size", 16)
    log.info("scoring %d images (%d validation, %d test) on %s", len(rows), (rows["split"] == "validation").sum(),
             (rows["split"] == "test").sum(), model.device)
    scores, maps = score_paths(model, rows["path"].tolist(), batch_size=batch_size, num_workers=num_workers)
    table_out = scores_table(rows, scores)
    write_maps(maps_path, rows["path"].tolist(), maps, getattr(model, "frame", (0.0, 0.0, 1.0, 1.0)))
    write_scores(scores_path, table_out)
    return table_out
