"""Metrics of one method on one category: ``scores.csv`` + ``maps.npz`` + ground truth → ``metrics.csv``.

Image AUROC uses the method's image scores of all test images; for datasets with logical and
structural anomalies (MVTec LOCO, the demo) it is also reported per kind, each kind against all good
test images, and as the mean of the two (the MVTec LOCO protocol). Pixel metrics compare the maps
with the ground truth at ``evaluation.size`` × ``evaluation.size`` pixels: maps are resized
bilinearly, masks (each cut with its own image's map frame, :mod:`anomalyflow.frames`) with nearest
neighbour. Pixel AUROC and AUPRO use the
union of an image's masks; sPRO (LOCO) uses each defect's own mask and saturation area.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from anomalyflow.atomic import write_csv
from anomalyflow.data.table import read_samples, split_rows
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.frames import pixel_box
from anomalyflow.maps import resize
from anomalyflow.outputs import read_maps, read_scores

METRIC_COLUMNS = [
    "image_auroc", "image_auroc_logical", "image_auroc_structural", "image_auroc_lo_st_mean",
    "pixel_auroc", "aupro",
]
#: The smallest ``evaluation.size`` (the config schema's minimum): maps and masks compared at fewer pixels
#: a side say next to nothing about localisation.
MIN_SIZE = 8


def spro_column(limit: float) -> str:
    return f"auc_spro_{limit:g}"


def evaluate_category(
    samples_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    maps_path: str | os.PathLike | None,
    *,
    method: str,
    size: int = 256,
    fpr_limit: float = 0.3,
    spro_limits: Sequence[float] = (0.01, 0.05, 0.1, 0.3, 1.0),
    defects_config: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One row of metrics for ``method`` on the category of ``samples_path``.

    ``size``, ``fpr_limit`` and ``spro_limits`` are the config's ``evaluation`` block (the workflow
    passes it as keyword arguments, so a key this function does not take is a ``TypeError``, never
    silently ignored). A size below :data:`MIN_SIZE` pixels or a limit outside (0, 1] raises
    :class:`ConfigError` before anything is read.
    """
    from anomalyflow.metrics import aupro, image_auroc, loco_image_aurocs, pixel_auroc

    _check_settings(size, fpr_limit, spro_limits)
    table = read_samples(samples_path)
    test = split_rows(table, "test")
    if test.empty:
        raise DataError(f"{samples_path}: the category has no test images")
    _require_both_classes(test, samples_path)
    scored = _align_scores(read_scores(scores_path), test, scores_path)
    row = {
        "dataset": test["dataset"].iloc[0], "category": test["category"].iloc[0], "method": method,
        "n_test_good": int((test["label"] == 0).sum()), "n_test_anomalous": int((test["label"] == 1).sum()),
    }
    labels = test["label"].to_numpy()
    scores = scored["score"].to_numpy()
    row["image_auroc"] = image_auroc(labels, scores)
    kinds = set(test["anomaly_kind"]) - {"none"}
    if "logical" in kinds:
        per_kind = loco_image_aurocs(labels, test["anomaly_kind"].to_numpy(), scores)
        row["image_auroc_logical"] = per_kind["logical"]
        row["image_auroc_structural"] = per_kind["structural"]
        row["image_auroc_lo_st_mean"] = per_kind["mean"]

    has_masks = bool(test.loc[test["label"] == 1, "mask_paths"].map(len).gt(0).any())
    if maps_path is not None and has_masks:
        maps, frames = _test_maps(maps_path, test, size)
        masks = np.stack([_mask(paths, frame, size) for paths, frame in zip(test["mask_paths"], frames, strict=True)])
        row["pixel_auroc"] = pixel_auroc(masks, maps)
        row["aupro"] = aupro(masks, maps, fpr_limit=fpr_limit)
        if defects_config is not None:
            row.update(_spro(test, maps, frames, size, spro_limits, defects_config))
    return pd.DataFrame([row])


def _check_settings(size, fpr_limit, spro_limits) -> None:
    if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < MIN_SIZE:
        raise ConfigError(f"evaluation size: {size!r} is not a whole number of at least {MIN_SIZE} pixels")
    for name, limits in (("fpr_limit", [fpr_limit]), ("spro_limits", spro_limits)):
        for limit in limits:
            if not isinstance(limit, int | float | np.number) or isinstance(limit, bool) or not 0 < limit <= 1:
                raise ConfigError(f"evaluation {name}: {limit!r} is not a fraction in (0, 1]")


def _require_both_classes(test: pd.DataFrame, samples_path) -> None:
    """Image AUROC compares good with anomalous test images; a test set of one class has no AUROC."""
    n_good, n_anomalous = int((test["label"] == 0).sum()), int((test["label"] == 1).sum())
    if n_good and n_anomalous:
        return
    missing = "good" if not n_good else "anomalous"
    raise DataError(f"{samples_path}: category {test['category'].iloc[0]!r} has no {missing} test images "
                    f"({n_good} good, {n_anomalous} anomalous), so image AUROC is undefined; add {missing} images to "
                    "its test set")


def _align_scores(scores: pd.DataFrame, test: pd.DataFrame, scores_path) -> pd.DataFrame:
    indexed = scores.drop_duplicates("path").set_index("path")
    missing = test.loc[~test["path"].isin(indexed.index), "path"]
    if len(missing):
        raise DataError(f"{scores_path}: no score for test image {missing.iloc[0]} ({len(missing)} missing); "
                        "rerun the scoring rule")
    return indexed.loc[test["path"]].reset_index()


def maps_of_test_images(maps_path: str | os.PathLike, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The maps of ``test``'s images (float32 ``[N, h, w]``, in ``test``'s row order) from the ``maps.npz`` at
    ``maps_path`` and their frames ``[N, 4]``. Raises :class:`DataError` naming the first image without a map."""
    maps, paths, frames = read_maps(maps_path)
    position = {p: i for i, p in enumerate(paths)}
    missing = [p for p in test["path"] if p not in position]
    if missing:
        raise DataError(f"{maps_path}: no anomaly map for test image {missing[0]} ({len(missing)} missing)")
    order = np.asarray([position[p] for p in test["path"]], dtype=np.int64)
    return maps[order], frames[order]


def _test_maps(maps_path, test: pd.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The test images' maps at ``size``² ``[N, size, size]`` and their frames ``[N, 4]``, in ``test``'s order."""
    maps, frames = maps_of_test_images(maps_path, test)
    return resize(torch.from_numpy(maps), size).numpy(), frames


def _mask(paths: list[str], frame, size: int) -> np.ndarray:
    from anomalyflow.data.images import load_mask

    if not paths:
        return np.zeros((size, size), dtype=bool)
    mask = load_mask(paths)
    return _fit_mask(mask, frame, size, paths[0])


def _fit_mask(mask: np.ndarray, frame, size: int, name: str) -> np.ndarray:
    """Crop a full-resolution mask to the maps' frame and resize it to ``size``².

    Nearest-neighbour keeps each defect's shape; a defect region too small to survive it (a few pixels
    of a 1024² mask at 256²) is kept as the pixels its area covers, so no ground-truth region vanishes.
    """
    from scipy import ndimage

    y0, x0, y1, x1 = pixel_box(frame, *mask.shape)
    cropped = np.ascontiguousarray(mask[y0:y1, x0:x1])
    if cropped.size == 0:
        raise DataError(f"{name}: the map's frame {tuple(float(v) for v in frame)} leaves nothing of the mask")
    labels, count = ndimage.label(cropped, structure=np.ones((3, 3)))
    grid = torch.from_numpy(labels.astype(np.float32))[None, None]
    nearest = torch.nn.functional.interpolate(grid, size=(size, size), mode="nearest-exact")[0, 0].numpy()
    result = nearest > 0
    lost = np.setdiff1d(np.arange(1, count + 1), np.unique(nearest))
    if lost.size:
        vanished = torch.from_numpy(np.isin(labels, lost).astype(np.float32))[None, None]
        result |= torch.nn.functional.adaptive_max_pool2d(vanished, (size, size))[0, 0].numpy() > 0.5
    return result


def _spro(test: pd.DataFrame, maps: np.ndarray, frames: np.ndarray, size: int, limits, defects_config) -> dict:
    from anomalyflow.data.images import load_mask_channels
    from anomalyflow.data.mvtec_loco import read_defects_config_file
    from anomalyflow.metrics import auc_spro, saturation_areas

    config = read_defects_config_file(defects_config)
    defects = []
    for paths, frame in zip(test["mask_paths"], frames, strict=True):
        if not paths:
            defects.append([])
            continue
        channels, values = load_mask_channels(paths)
        y0, x0, y1, x1 = pixel_box(frame, *channels.shape[1:])
        area_scale = (size * size) / float((y1 - y0) * (x1 - x0))
        # As the official evaluator: saturation areas (relative or absolute, capped at the defect's area) in the
        # masks' own pixels; then scaled, like the defect itself, to the evaluation grid.
        saturation = saturation_areas(channels[:, y0:y1, x0:x1], values, config) * area_scale
        resized = [_fit_mask(channel, frame, size, paths[0]) for channel in channels]
        defects.append(list(zip(resized, saturation, strict=True)))
    values = auc_spro(maps, defects, fpr_limits=tuple(limits))
    return {spro_column(limit): values[limit] for limit in limits}


def write_metrics(path: str | os.PathLike, metrics: pd.DataFrame) -> None:
    write_csv(path, metrics, float_format="%.6f")
