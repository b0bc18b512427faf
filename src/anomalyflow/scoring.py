"""Scoring a category with a trained model of any family: batched, one DataLoader pass, maps kept as arrays.

Every method family provides a model class with ``load(model_dir, device)``, ``transform()``,
``predict(images) -> (scores [B], maps [B, H, W])`` and ``map_frame(height, width)`` (the part of an
image of that size its map covers, :mod:`anomalyflow.frames`). :func:`score_category` takes such a model,
loaded (a scoring job loads its own family's class by a plain import; :func:`anomalyflow.families.load_model`
loads any folder), scores the validation and test images of a sample table and writes ``scores.csv`` and
``maps.npz`` (see :mod:`anomalyflow.outputs`). This module imports no family, so a scoring job's code is its
own family's and this.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from anomalyflow.batching import map_batches
from anomalyflow.data.table import read_samples
from anomalyflow.frames import map_frames
from anomalyflow.logs import get_logger
from anomalyflow.outputs import scores_table, write_maps, write_scores

log = get_logger(__name__)


@torch.no_grad()
def score_paths(model, paths, *, batch_size: int, num_workers: int = 0,
                desc: str | None = "scoring") -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Scores ``[N]``, maps ``[N, H, W]`` (float32, CPU) and any extras of the images.

    The batch size halves on CUDA out-of-memory errors (:mod:`anomalyflow.batching`).

    ``model.predict`` returns ``(scores, maps)`` or ``(scores, maps, extras)`` with ``extras`` a dict of
    per-image arrays ``[B]`` (e.g. PUAD's two component scores; float64 here, columns of ``scores.csv``) or
    per-image maps ``[B, H, W]`` (numpy or torch; PUAD's logical map; float32 here, extra arrays of ``maps.npz``).
    """
    scores = np.empty(len(paths), dtype=np.float64)
    maps = None
    extras: dict[str, np.ndarray] = {}

    def predict(batch: torch.Tensor):
        batch_scores, batch_maps, *rest = model.predict(batch)
        # Converted inside the retried call: ``.float()`` of half-precision maps allocates on the GPU too.
        extra = {name: values.float().cpu().numpy() if torch.is_tensor(values) else np.asarray(values)
                 for name, values in (rest[0] if rest else {}).items()}
        return batch_scores, batch_maps.float().cpu().numpy(), extra

    for rows, (batch_scores, batch_maps, rest) in map_batches(predict, paths, model.transform(), batch_size,
                                                              device=model.device, num_workers=num_workers,
                                                              desc=desc, what="scoring"):
        scores[rows] = batch_scores
        for name, values in rest.items():
            if name not in extras:
                dtype = np.float64 if values.ndim == 1 else np.float32
                extras[name] = np.empty((len(paths), *values.shape[1:]), dtype=dtype)
            extras[name][rows] = values
        if maps is None:
            maps = np.empty((len(paths), *batch_maps.shape[-2:]), dtype=np.float32)
        maps[rows] = batch_maps
    return scores, maps, extras


def score_category(
    model,
    samples_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    maps_path: str | os.PathLike | None,
    *,
    batch_size: int | None = None,
    num_workers: int = 0,
) -> pd.DataFrame:
    """Score the validation and test images of a category with a loaded ``model``; write ``scores.csv`` and (unless
    None) ``maps.npz``. ``batch_size`` defaults to the model's own (``params["batch_size"]``, else 16)."""
    table = read_samples(samples_path)
    rows = table.loc[table["split"].isin(["validation", "test"])].reset_index(drop=True)
    batch_size = batch_size or model.params.get("batch_size", 16)
    log.info("scoring %d images (%d validation, %d test) on %s", len(rows), (rows["split"] == "validation").sum(),
             (rows["split"] == "test").sum(), model.device)
    scores, maps, extras = score_paths(model, rows["path"].tolist(), batch_size=batch_size, num_workers=num_workers)
    columns = {name: values for name, values in extras.items() if values.ndim == 1}
    layers = {name: values for name, values in extras.items() if values.ndim != 1}
    table_out = scores_table(rows, scores, **columns)
    if maps_path is not None:
        write_maps(maps_path, rows["path"].tolist(), maps, map_frames(model, rows["path"].tolist()), **layers)
    write_scores(scores_path, table_out)
    return table_out
