"""The sample table: one row per image, the single currency between datasets and methods.

Columns (``SAMPLE_COLUMNS``):

- ``dataset``      the dataset name from the config (e.g. ``demo``, ``loco``)
- ``category``     the product/category (e.g. ``screw``)
- ``path``         the image file
- ``split``        ``train`` | ``validation`` | ``test``
- ``label``        0 good, 1 anomalous
- ``defect_type``  the test folder (``good``, ``scratch``, ``logical_anomalies`` …)
- ``anomaly_kind`` ``none`` (good) | ``structural`` | ``logical``
- ``mask_paths``   list of ground-truth files (empty for good images; several for MVTec LOCO, one per
                   defect region)

On disk the table is a CSV (``samples.csv``) with ``mask_paths`` as a JSON list. Rows are sorted by
split, defect type and path, so the same folder always gives the same table.

Every statistic in anomalyflow (normalisation, quantiles, z-scores, thresholds) takes its rows through
:func:`fit_rows`, which refuses test rows: the test split is for scoring only. A function that computes
a statistic from values it is handed also takes the rows they belong to and checks them with
:func:`require_no_test`; means and standard deviations are computed by :func:`normal_statistics`, which
does both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from anomalyflow.atomic import write_csv
from anomalyflow.errors import DataError, LeakageError

SAMPLE_COLUMNS = ["dataset", "category", "path", "split", "label", "defect_type", "anomaly_kind", "mask_paths"]
SPLITS = ("train", "validation", "test")
ANOMALY_KINDS = ("none", "structural", "logical")
SPLIT_ORDER = {name: i for i, name in enumerate(SPLITS)}


def make_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Build a validated, canonically sorted sample table from row dicts."""
    frame = pd.DataFrame(list(rows), columns=SAMPLE_COLUMNS)
    if frame.empty:
        return frame
    frame["label"] = frame["label"].astype(int)
    frame["mask_paths"] = [list(m) if m else [] for m in frame["mask_paths"]]
    frame = frame.sort_values(
        ["category", "split", "defect_type", "path"], key=lambda s: s.map(SPLIT_ORDER) if s.name == "split" else s
    ).reset_index(drop=True)
    validate_table(frame)
    return frame


def validate_table(frame: pd.DataFrame) -> None:
    """Check the table's invariants; a violation is a bug in a layout reader, so say which row."""
    missing = [c for c in SAMPLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"sample table lacks columns {missing}")
    bad_split = frame.loc[~frame["split"].isin(SPLITS)]
    if len(bad_split):
        raise DataError(f"{bad_split['path'].iloc[0]}: unknown split {bad_split['split'].iloc[0]!r}")
    bad_kind = frame.loc[~frame["anomaly_kind"].isin(ANOMALY_KINDS)]
    if len(bad_kind):
        raise DataError(f"{bad_kind['path'].iloc[0]}: unknown anomaly kind {bad_kind['anomaly_kind'].iloc[0]!r}")
    inconsistent = frame.loc[(frame["label"] == 0) != (frame["anomaly_kind"] == "none")]
    if len(inconsistent):
        raise DataError(f"{inconsistent['path'].iloc[0]}: label and anomaly_kind disagree")
    anomalous_fit = frame.loc[(frame["split"] != "test") & (frame["label"] != 0)]
    if len(anomalous_fit):
        raise DataError(f"{anomalous_fit['path'].iloc[0]}: anomalous image in the {anomalous_fit['split'].iloc[0]} "
                        "split; only the test split may hold anomalies")
    duplicated = frame.loc[frame.duplicated(["category", "path"])]
    if len(duplicated):
        raise DataError(f"{duplicated['path'].iloc[0]}: listed twice in the sample table")


def write_samples(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    out = frame.copy()
    out["mask_paths"] = [json.dumps(list(m)) for m in out["mask_paths"]]
    write_csv(path, out)


def read_samples(path: str | os.PathLike) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, dtype={"category": str, "defect_type": str, "path": str})
    except FileNotFoundError:
        raise DataError(f"{path}: sample table not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable sample table ({error})") from None
    frame["label"] = frame["label"].astype(int)
    frame["mask_paths"] = [json.loads(m) if m else [] for m in frame["mask_paths"]]
    validate_table(frame)
    return frame


def split_rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """All rows of one split (for scoring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return frame.loc[frame["split"] == split].reset_index(drop=True)


def fit_rows(frame: pd.DataFrame, splits: str | Iterable[str], *, purpose: str) -> pd.DataFrame:
    """The rows a statistic may be computed from: good images of the given non-test split(s).

    This is the leakage guard: it raises :class:`LeakageError` when asked for the test split. Functions
    that compute a statistic from rows they are handed call :func:`require_no_test` on them. ``purpose``
    names the statistic in the message, e.g. ``"EfficientAD quantiles"``.
    """
    wanted = (splits,) if isinstance(splits, str) else tuple(splits)
    for split in wanted:
        if split not in ("train", "validation"):
            raise LeakageError(f"{purpose}: statistics may use only the train and validation splits, not {split!r}")
    rows = frame.loc[frame["split"].isin(wanted) & (frame["label"] == 0)].reset_index(drop=True)
    if rows.empty:
        raise DataError(f"{purpose}: no good images in the {'/'.join(wanted)} split")
    return rows


def require_no_test(frame: pd.DataFrame, *, purpose: str) -> None:
    """Refuse a table that contains test-split rows: ``purpose`` must not see them."""
    if "split" not in frame.columns:
        raise LeakageError(f"{purpose}: rows without a split column cannot be checked for test-set leakage")
    test = frame.loc[frame["split"] == "test"]
    if len(test):
        raise LeakageError(
            f"{purpose}: refusing {len(test)} test-split image(s) (first: {test['path'].iloc[0]}); statistics are "
            "computed from training/validation normals only"
        )


def normal_statistics(values, rows: pd.DataFrame, *, purpose: str) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0, float64) of ``values``, one entry per row of ``rows``
    along the first axis (a score each, or a map each: all its pixels count).

    The rows are checked with :func:`require_no_test` first, so a z-score or a normalisation can only be
    fitted on training/validation images. The caller decides what a zero spread means.
    """
    require_no_test(rows, purpose=purpose)
    array = np.asarray(values)
    if array.ndim == 0 or array.shape[0] != len(rows):
        raise ValueError(f"{purpose}: {len(rows)} rows but values of shape {array.shape}")
    if array.size == 0:
        raise DataError(f"{purpose}: no images to compute statistics from")
    return float(array.mean(dtype=np.float64)), float(array.std(dtype=np.float64))
