"""Ensembles of any methods of one category: normalise each member's maps, average, score (PNI C7).

Each member's maps are normalised with statistics of its **validation** maps (good images only,
through the leakage guard): ``validation`` subtracts the mean and divides by the standard deviation of
all validation pixels; ``validation_minmax`` maps the validation min/max to 0/1. The official PNI
script instead min-max normalises with the minimum and maximum over all **test** images of the
category (``test_minmax``): that uses the test set and is offered only to reproduce published numbers.

Members' maps may cover different parts of the image (PNI's centre crop vs EfficientAD's full frame),
and which part may differ per image (PNI's crop depends on the aspect ratio): each member's map of an
image is cropped to the first member's frame of that image, which must lie inside it, and resized to
the first member's grid (:mod:`anomalyflow.frames`). New images (:class:`Ensemble`, ``anomalyflow
predict``) go through each member's own preprocessing. The ensemble map is the mean of the
normalised maps. The image score is the map's maximum (``max``), the mean of its top 1 % pixels
(``top_mean``, the PNI ensemble script), or the mean of the members' image scores z-scored on
validation (``mean_zscore``, for members whose maps say less than their scores, e.g. PUAD).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from anomalyflow.atomic import write_json
from anomalyflow.data.table import fit_rows, normal_statistics, read_samples, require_no_test
from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.frames import crop_to_frames, frames_for_sizes
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import ENSEMBLE_FOLDER
from anomalyflow.outputs import read_maps, read_scores, scores_table, write_maps, write_scores
from anomalyflow.params import family_params

log = get_logger(__name__)



def map_statistics(maps: np.ndarray, rows: pd.DataFrame, mode: str) -> tuple[float, float]:
    """(offset, scale) that normalise a member's maps: ``(maps - offset) / scale``."""
    if mode == "test_minmax":
        offset, upper = float(maps.min()), float(maps.max())
        scale = upper - offset
    else:
        require_no_test(rows, purpose="ensemble map normalisation")
        if mode == "validation":
            offset, scale = normal_statistics(maps, rows, purpose="ensemble map normalisation")
        else:
            offset, upper = float(maps.min()), float(maps.max())
            scale = upper - offset
    if not scale > 0 or not np.isfinite(scale):
        raise NumericalError(f"ensemble normalisation ({mode}): the member's maps are constant; nothing to normalise")
    return offset, scale


def image_scores_from_maps(maps: torch.Tensor, rule: str, top_fraction: float = 0.01) -> np.ndarray:
    flat = maps.reshape(maps.shape[0], -1)
    if rule == "max":
        return flat.amax(dim=1).double().numpy()
    k = max(1, round(top_fraction * flat.shape[1]))
    return flat.topk(k, dim=1).values.mean(dim=1).double().numpy()


def ensemble_category(samples_path: str | os.PathLike, members: Sequence[tuple[str, str, str]],
                      scores_path: str | os.PathLike, maps_path: str | os.PathLike, model_path: str | os.PathLike,
                      params: Mapping | None = None) -> pd.DataFrame:
    """Combine ``members`` — (name, scores.csv, maps.npz) — of one category; write scores, maps and model.json.

    ``params``: an ``ensemble`` method's config entry (:func:`anomalyflow.params.family_params`: checked, unset
    keys from the schema); it reads ``normalization``, ``image_score`` and ``top_fraction``. The members named
    there are the workflow's; here they are ``members``.
    """
    p = family_params("ensemble", params)
    normalization, image_score, top_fraction = p.normalization, p.image_score, p.top_fraction
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least two members, got {len(members)}")
    if normalization == "test_minmax":
        log.warning("ensemble: normalising with the test set's min/max (the official PNI script) uses test "
                     "statistics; for numbers that never saw the test set use normalization: validation")
    table = read_samples(samples_path)
    rows = table.loc[table["split"].isin(["validation", "test"])].reset_index(drop=True)
    validation = fit_rows(table, "validation", purpose="ensemble normalisation")
    is_validation = rows["path"].isin(validation["path"]).to_numpy()
    is_test = (rows["split"] == "test").to_numpy()

    target_frames, grid, fused, statistics, member_scores = None, None, None, {}, []
    for name, member_scores_path, member_maps_path in members:
        maps, paths, frames = read_maps(member_maps_path)
        index = {p: i for i, p in enumerate(paths)}
        missing = [p for p in rows["path"] if p not in index]
        if missing:
            raise DataError(f"{member_maps_path}: no map for {missing[0]} ({len(missing)} missing)")
        order = [index[p] for p in rows["path"]]
        member, frames = torch.from_numpy(maps[order]), frames[order]
        if target_frames is None:
            target_frames, grid = frames, tuple(member.shape[-2:])
        member = crop_to_frames(member, frames, target_frames, grid)
        reference = is_test if normalization == "test_minmax" else is_validation
        reference_rows = rows.loc[reference]
        offset, scale = map_statistics(member.numpy()[reference], reference_rows, normalization)
        statistics[name] = {"offset": offset, "scale": scale}
        normalised = (member - offset) / scale
        fused = normalised if fused is None else fused + normalised
        member_scores.append(_aligned_scores(member_scores_path, rows))
    fused = fused / len(members)

    score_statistics = {}
    for (name, _, _), values in zip(members, member_scores, strict=True):
        mean, std = normal_statistics(values[is_validation], rows.loc[is_validation],
                                      purpose="ensemble score z-scores")
        score_statistics[name] = {"mean": mean, "std": std}
    if image_score == "mean_zscore":
        if not all(s["std"] > 0 for s in score_statistics.values()):
            raise NumericalError("ensemble: a member's validation scores have no spread; cannot z-score them")
        scores = np.mean([(values - s["mean"]) / s["std"]
                          for values, s in zip(member_scores, score_statistics.values(), strict=True)], axis=0)
    else:
        scores = image_scores_from_maps(fused, image_score, top_fraction)
    out = scores_table(rows, scores)
    write_maps(maps_path, rows["path"].tolist(), fused.numpy(), target_frames)
    write_scores(scores_path, out)
    write_json(model_path, {
        "family": ENSEMBLE_FOLDER.family, "members": [m[0] for m in members], "normalization": normalization,
        "image_score": image_score, "top_fraction": top_fraction, "statistics": statistics,
        "score_statistics": score_statistics, "grid": list(grid)})
    return out


class Ensemble:
    """A trained ensemble as a model: its loaded members (sibling method folders) and their fused outputs.

    ``meta`` is the ensemble folder's ``model.json``; :func:`anomalyflow.families.load_model` loads the members it
    names. ``predict`` applies exactly the normalisation and image-score rule that :func:`ensemble_category`
    fitted, so new images are scored the way the test set was: each member sees the image through its
    own :meth:`transform` (their input sizes differ), and each member's map is cropped to the first
    member's frame of that image.
    """

    family = "ensemble"

    def __init__(self, members: list, meta: dict, device):
        self.members = members
        self.meta = meta
        self.device = device
        self.params = {"batch_size": min(m.params.get("batch_size", 16) for m in members)}

    def transform(self):
        """PIL image → a tuple: each member's input (own size and normalisation), then ``[2]`` (height, width).

        The image's size travels with the views: which part of it each member's map covers depends on it.
        """
        return MemberViews([m.transform() for m in self.members])

    def map_frame(self, height: int, width: int):
        """The part of a ``height × width`` image the fused map covers: the first member's frame."""
        return self.members[0].map_frame(height, width)

    @torch.no_grad()
    def predict(self, views: Sequence[torch.Tensor]) -> tuple[np.ndarray, torch.Tensor]:
        """``views`` from :meth:`transform`, batched: ``M`` member inputs ``[B, 3, H_m, W_m]`` and sizes ``[B, 2]``.

        Returns fused image scores ``[B]`` (float64) and fused maps ``[B, *grid]`` (float32, CPU).
        """
        *inputs, sizes = views
        if len(inputs) != len(self.members):
            raise ValueError(f"ensemble: {len(inputs)} inputs for {len(self.members)} members; use Ensemble.transform")
        sizes = [tuple(size) for size in sizes.tolist()]
        targets = frames_for_sizes(self, sizes)
        grid, fused, z_scores = tuple(self.meta["grid"]), None, []
        for name, member, images in zip(self.meta["members"], self.members, inputs, strict=True):
            scores, maps = member.predict(images)[:2]
            maps = crop_to_frames(maps.float().cpu(), frames_for_sizes(member, sizes), targets, grid)
            stats = self.meta["statistics"][name]
            normalised = (maps - stats["offset"]) / stats["scale"]
            fused = normalised if fused is None else fused + normalised
            score_stats = self.meta["score_statistics"][name]
            z_scores.append((np.asarray(scores) - score_stats["mean"]) / score_stats["std"])
        fused = fused / len(self.members)
        if self.meta["image_score"] == "mean_zscore":
            return np.mean(z_scores, axis=0), fused
        return image_scores_from_maps(fused, self.meta["image_score"], self.meta["top_fraction"]), fused


class MemberViews:
    """The ensemble's transform: every member's transform of one image, then its ``(height, width)``.

    A class rather than a closure so that DataLoader worker processes can pickle it.
    """

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, image) -> tuple[torch.Tensor, ...]:
        return (*(transform(image) for transform in self.transforms),
                torch.tensor([image.height, image.width], dtype=torch.int64))


def _aligned_scores(path: str, rows: pd.DataFrame) -> np.ndarray:
    scores = read_scores(path).drop_duplicates("path").set_index("path")
    missing = rows.loc[~rows["path"].isin(scores.index), "path"]
    if len(missing):
        raise DataError(f"{path}: no score for {missing.iloc[0]} ({len(missing)} missing)")
    return scores.loc[rows["path"], "score"].to_numpy(dtype=np.float64)
