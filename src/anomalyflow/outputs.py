"""What every method writes for one category, and how evaluation reads it back.

``scores.csv``: one row per validation and test image, columns ``path, split, defect_type, label,
anomaly_kind, score`` (+ method-specific extra columns, e.g. PUAD's component scores). The image
score is the method's decision value: higher means more anomalous.

``maps.npz``: the anomaly maps of the test images, ``maps`` float32 ``[N, H, W]`` in the order of
``paths`` (str ``[N]``), plus ``frame`` float64 ``[N, 4]``: per map, (top, left, height, width) of the
part of its original image the map covers, as fractions (``(0, 0, 1, 1)`` = the whole image; PNI's
centre crop covers less, and how much depends on the image's aspect ratio; see
:mod:`anomalyflow.frames`). Evaluation cuts each mask with its own image's frame before comparing.
Files written before frames were per image hold one frame ``[4]`` for all maps; :func:`read_maps`
repeats it. A method may add further maps of the same images under names of its own, float32 ``[N, H, W]``
each (PUAD's ``logical``, see :mod:`anomalyflow.puad`): evaluation ignores them, the report shows them
(:func:`read_map_layers`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.atomic import save_npz, write_csv
from anomalyflow.errors import DataError, NumericalError
from anomalyflow.frames import FULL_FRAME, as_frames

SCORE_COLUMNS = ["path", "split", "defect_type", "label", "anomaly_kind", "score"]
MAPS_ARRAYS = ("maps", "paths", "frame")  # the arrays every maps.npz has; any other is an extra map layer


def scores_table(rows: pd.DataFrame, scores, **extra) -> pd.DataFrame:
    """The ``scores.csv`` table for ``rows`` of the sample table and their image scores."""
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (len(rows),):
        raise ValueError(f"{len(rows)} rows but scores of shape {values.shape}")
    if not np.isfinite(values).all():
        bad = rows["path"].iloc[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise NumericalError(f"the model produced a non-finite score (first for {bad}); the training data may be "
                             "constant or the learning rate too high")
    table = rows[["path", "split", "defect_type", "label", "anomaly_kind"]].reset_index(drop=True).copy()
    table["score"] = values
    for name, column in extra.items():
        table[name] = np.asarray(column)
    return table


def write_scores(path: str | os.PathLike, table: pd.DataFrame) -> None:
    write_csv(path, table, float_format="%.9g")


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, keep_default_na=False, dtype={"path": str, "defect_type": str})
    except FileNotFoundError:
        raise DataError(f"{path}: scores not found") from None
    missing = [c for c in SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: not a scores table (missing {missing})")
    return table


def write_maps(path: str | os.PathLike, paths, maps, frames=FULL_FRAME, **layers) -> None:
    """Write ``maps`` ``[N, H, W]`` of ``paths`` with their ``frames`` (``[N, 4]``, or one ``[4]`` for all) and any
    extra map ``layers`` (name → ``[N, H', W']``, stored float32 under that name)."""
    arrays = {name: np.asarray(values, dtype=np.float32) for name, values in {"maps": maps, **layers}.items()}
    clashing = sorted(set(layers) & set(MAPS_ARRAYS))
    if clashing:
        raise ValueError(f"an extra map may not be named {clashing[0]!r}")
    for name, array in arrays.items():
        if array.ndim != 3 or array.shape[0] != len(paths):
            raise ValueError(f"{name} must be [N, H, W] for {len(paths)} paths, got {array.shape}")
        finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if not finite.all():
            raise NumericalError(f"{path}: the model produced non-finite anomaly maps ({name}, first for "
                                 f"{paths[int(np.flatnonzero(~finite)[0])]}); check that the training images are "
                                 "not constant, or lower the learning rate")
    save_npz(path, **arrays, paths=np.asarray([str(p) for p in paths]),
             frame=as_frames(frames, len(arrays["maps"])))


def read_metrics(paths: Sequence[str | os.PathLike], *, what: str) -> pd.DataFrame:
    """The ``metrics.csv`` files (:func:`anomalyflow.evaluate.write_metrics`) as one table; :class:`DataError` for
    a missing or empty file, or for none at all (``what`` needs them: "the results table", "the report")."""
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_csv(path, dtype={"category": str}))
        except (FileNotFoundError, pd.errors.EmptyDataError):
            raise DataError(f"{path}: metrics file missing or empty; rerun its results_metrics job") from None
    if not frames:
        raise DataError(f"no metrics files: {what} needs at least one")
    return pd.concat(frames, ignore_index=True)


def read_maps(path: str | os.PathLike) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Maps ``[N, H, W]`` float32, their image paths, and their frames ``[N, 4]`` float64.

    Raises :class:`DataError` naming the file if it is missing or not a maps file.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            maps = data["maps"].astype(np.float32)
            paths = [str(p) for p in data["paths"]]
            frames = as_frames(data.get("frame", FULL_FRAME), len(maps))
    except FileNotFoundError:
        raise DataError(f"{path}: anomaly maps not found") from None
    except (KeyError, ValueError, OSError) as error:
        raise DataError(f"{path}: not an anomaly-map file ({error})") from None
    return maps, paths, frames


@contextmanager
def _extra_maps_file(path: str | os.PathLike):
    """A ``maps.npz`` opened for its extra maps; :class:`DataError` naming the file if missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            yield data
    except FileNotFoundError:
        raise DataError(f"{path}: anomaly maps not found") from None
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not an anomaly-map file ({error})") from None


def read_map_layers(path: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The extra maps of a ``maps.npz`` (name → float32 ``[N, H, W]``, in the order of its ``paths``), all of them
    or only those ``names``; none for most methods. Raises :class:`DataError` naming the file if it is missing
    or unreadable."""
    with _extra_maps_file(path) as data:
        return {name: data[name].astype(np.float32) for name in data.files
                if name not in MAPS_ARRAYS and (names is None or name in names)}


def map_layer_names(path: str | os.PathLike) -> list[str]:
    """The names of a ``maps.npz``'s extra maps, read without loading them; errors as :func:`read_map_layers`."""
    with _extra_maps_file(path) as data:
        return [name for name in data.files if name not in MAPS_ARRAYS]


def method_outputs(model_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The folder's scores.csv and maps.npz (every family writes both; PUAD's map is its fused one)."""
    model_dir = Path(model_dir)
    return model_dir / "scores.csv", model_dir / "maps.npz"


def colour_range(model_dir: str | os.PathLike, threshold_map: float | None = None) -> tuple[float, float]:
    """(low, high) of the overlay colour scale of a model folder's maps (``anomalyflow predict``'s overlays): the
    median and the maximum (or ``threshold_map``, if larger) of its validation normals' map values."""
    scores_path, maps_path = method_outputs(model_dir)
    if not maps_path.is_file():
        return 0.0, 1.0
    maps, paths, _ = read_maps(maps_path)
    splits = read_scores(scores_path).set_index("path")["split"] if scores_path.is_file() else pd.Series(dtype=str)
    normal = np.array([splits.get(p) == "validation" for p in paths])
    reference = maps[normal] if normal.any() else maps
    low, high = float(np.median(reference)), float(reference.max())
    if threshold_map is not None:
        high = max(high, threshold_map)
    return low, high if high > low else low + 1.0
