"""Decision thresholds on image scores: operating points from validation normals, and ``anomalyflow predict``'s.

**One comparison convention everywhere:** an image is *anomalous* iff ``score >= threshold``
(:func:`is_anomalous`). That is how the ROC curve counts ties (a point of the curve at a score value counts
every image with that score or more, :func:`anomalyflow.viz.roc_points`, sklearn's ``roc_curve``), and how
``predict`` gives its verdicts, so a threshold means the same in ``operating_points.csv``, on the curve and in
``predictions.csv``.

``fpr:<a>`` (:func:`false_alarm_thresholds`): the smallest threshold whose false-alarm rate on the
validation normals is at most ``a``. With ``n`` validation normals at most ``k = floor(a·n)`` of them may be
flagged; with the scores sorted from the largest, ``s(1) ≥ s(2) ≥ … ≥ s(n)``, every threshold above
``s(k+1)`` flags at most ``k`` and ``s(k+1)`` itself flags at least ``k + 1``, so the threshold is the next
float64 above ``s(k+1)``. For ``a = 0`` that is just above the largest normal score; for ``a < 1/n`` too (no
normal may be flagged). Ties among the normals can make the rate reached lower than ``a`` (a tied group is
flagged all together or not at all). Only the validation split's good images enter (the leakage guard).
``operating_points.csv`` (:func:`operating_points`) gives, per rate, that threshold and the test set's
counts at it.

``quantile``: the q-quantile of the validation normals' scores (e.g. 0.99 flags about 1 % of normal
images) — computed through the leakage guard, from data the model never was evaluated on.
``f1``: the threshold maximising F1 on a labelled scored set. The only labelled anomalies are in the
test split, so this threshold is fitted on the test set: it is optimistic on that set and offered for
comparison with papers that report it (the PNI analysis script does), never as the default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.atomic import write_csv
from anomalyflow.data.table import fit_rows, require_no_test
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.logs import get_logger

log = get_logger(__name__)

#: The file of a method's operating points, beside its ``scores.csv`` (``results/<ds>/<cat>/<method>/``).
OPERATING_POINTS_CSV = "operating_points.csv"
OPERATING_POINT_COLUMNS = [
    "false_alarm_rate", "threshold", "validation_normals", "validation_false_alarms", "validation_false_alarm_rate",
    "tp", "fp", "fn", "tn", "recall", "test_false_alarm_rate",
]


def is_anomalous(scores, threshold: float) -> np.ndarray:
    """The verdicts (bool, the shape of ``scores``): anomalous iff ``score >= threshold`` (the module's convention)."""
    return np.asarray(scores, dtype=np.float64) >= threshold


def check_false_alarm_rates(rates: Sequence[float]) -> np.ndarray:
    """The rates as float64 ``[R]``; :class:`ConfigError` for none, or one outside [0, 1) (at rate 1 every
    threshold would do: there is no smallest)."""
    values = np.asarray(list(rates), dtype=object)
    if values.size == 0:
        raise ConfigError("evaluation false_alarm_rates: give at least one rate")
    for rate in values:
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.number) or not 0 <= rate < 1:
            raise ConfigError(f"evaluation false_alarm_rates: {rate!r} is not a fraction in [0, 1)")
    return values.astype(np.float64)


def false_alarm_thresholds(normal_scores, rates: Sequence[float]) -> np.ndarray:
    """Per rate ``a``, the smallest threshold flagging at most ``a`` of ``normal_scores`` (module docstring).

    ``normal_scores``: ``[n]`` image scores of validation normals (any real unit; n ≥ 1). Returns float64 ``[R]``,
    each the next float64 above the ``(floor(a·n) + 1)``-th largest score; ``a·n`` is rounded to 9 decimals
    before the floor, so that e.g. 0.29 · 100 allows 29 false alarms, not 28. Raises :class:`ConfigError` for a
    rate outside [0, 1) and :class:`DataError` for no scores or a non-finite one.
    """
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise DataError("no validation normal scores to place a threshold on")
    if not np.isfinite(scores).all():
        raise DataError("a validation normal score is not finite")
    rates = check_false_alarm_rates(rates)
    allowed = np.floor(np.round(rates * scores.size, 9)).astype(np.int64)  # k < n, as every rate is below 1
    descending = np.sort(scores)[::-1]
    return np.nextafter(descending[allowed], np.inf)


def flagged_counts(scores, thresholds) -> np.ndarray:
    """How many of ``scores`` ``[n]`` are anomalous (``>=``) at each of ``thresholds`` ``[R]``: int64 ``[R]``."""
    ascending = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    return ascending.size - np.searchsorted(ascending, np.asarray(thresholds, dtype=np.float64), side="left")


def operating_points(scores: pd.DataFrame, rates: Sequence[float]) -> pd.DataFrame:
    """The operating points of one method on one category, from its ``scores.csv`` table.

    Thresholds come from the validation split's good images only (:func:`anomalyflow.data.table.fit_rows`);
    the test split's images are counted at each: ``tp``/``fn`` (anomalous test images flagged / missed),
    ``fp``/``tn`` (good test images flagged / passed), ``recall = tp / (tp + fn)`` and ``test_false_alarm_rate =
    fp / (fp + tn)`` (NaN where the test set has no image of that class). One row per rate, in the given order;
    columns :data:`OPERATING_POINT_COLUMNS`. Raises :class:`DataError` without validation normals.
    """
    normals = fit_rows(scores, "validation", purpose="operating points")["score"].to_numpy(dtype=np.float64)
    thresholds = false_alarm_thresholds(normals, rates)
    test = scores.loc[scores["split"] == "test"]
    labels = test["label"].to_numpy(dtype=np.int64)
    values = test["score"].to_numpy(dtype=np.float64)
    tp, fp = flagged_counts(values[labels == 1], thresholds), flagged_counts(values[labels == 0], thresholds)
    positives, negatives = int((labels == 1).sum()), int((labels == 0).sum())
    false_alarms = flagged_counts(normals, thresholds)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "false_alarm_rate": check_false_alarm_rates(rates), "threshold": thresholds,
            "validation_normals": normals.size, "validation_false_alarms": false_alarms,
            "validation_false_alarm_rate": false_alarms / normals.size,
            "tp": tp, "fp": fp, "fn": positives - tp, "tn": negatives - fp,
            "recall": tp / np.float64(positives), "test_false_alarm_rate": fp / np.float64(negatives),
        })


def write_operating_points(scores_path: str | os.PathLike, out_path: str | os.PathLike,
                           rates: Sequence[float]) -> pd.DataFrame:
    """``operating_points.csv`` from a method's ``scores.csv`` (:func:`operating_points`). Floats are written as
    pandas writes them by default, the shortest text that reads back as the same float64, so a threshold read
    back gives the same verdicts."""
    from anomalyflow.outputs import read_scores

    table = operating_points(read_scores(scores_path), rates)
    n = int(table["validation_normals"].iloc[0])
    rates = table["false_alarm_rate"]
    coarse = rates[(rates > 0) & (rates < 1 / n)]
    if len(coarse):
        # Not an error: the threshold is still exact (above every normal), but it is the rate-0 one.
        log.warning("%d validation normals: rates below 1/%d (%s) allow no false alarm, so they share the threshold "
                    "of rate 0", n, n, ", ".join(f"{r:g}" for r in coarse))
    write_csv(out_path, table)
    return table


def parse_false_alarm_rate(threshold: str) -> float | None:
    """The rate ``a`` of a ``--threshold fpr:<a>`` (e.g. ``fpr:0.01``), None for any other threshold; raises
    :class:`DataError` for ``fpr:`` followed by something that is not a number."""
    if not threshold.startswith("fpr:"):
        return None
    try:
        return float(threshold[4:])
    except ValueError:
        raise DataError(f"--threshold: {threshold!r} is not fpr:<rate>, e.g. fpr:0.01") from None


def read_operating_point(model_dir: str | os.PathLike, rate: float) -> float:
    """The threshold of false-alarm rate ``rate`` in ``model_dir``'s ``operating_points.csv``.

    Raises :class:`DataError` when the folder has no such file or no row of that rate (the message lists
    the rates it has).
    """
    path = Path(model_dir) / OPERATING_POINTS_CSV
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no operating points for this model folder; build them with "
                        f"`snakemake {path}`") from None
    if not {"false_alarm_rate", "threshold"} <= set(table.columns):
        raise DataError(f"{path}: not an operating points table (no false_alarm_rate and threshold columns)")
    match = table.loc[np.isclose(table["false_alarm_rate"], rate, rtol=1e-9, atol=0.0)]
    if match.empty:
        have = ", ".join(f"fpr:{r:g}" for r in table["false_alarm_rate"])
        raise DataError(f"{path}: no operating point at false-alarm rate {rate:g} (it has {have}); add the rate "
                        "to evaluation.false_alarm_rates and rerun")
    return float(match["threshold"].iloc[0])


def quantile_threshold(scores: pd.DataFrame, q: float = 0.99) -> float:
    """The ``q``-quantile of the validation normals in a ``scores.csv`` table."""
    if not 0 < q < 1:
        raise DataError(f"threshold quantile must lie in (0, 1), got {q}")
    rows = scores.loc[(scores["split"] == "validation") & (scores["label"] == 0)]
    require_no_test(rows, purpose="threshold")
    if rows.empty:
        raise DataError("no validation normals in the model's scores.csv; cannot place a threshold from validation")
    return float(np.quantile(rows["score"].to_numpy(dtype=np.float64), q))


def f1_threshold(scores: pd.DataFrame) -> float:
    """The F1-optimal threshold on the labelled test rows (see the module docstring: uses test labels).

    sklearn's ``precision_recall_curve`` counts ``score >= threshold`` as anomalous: the module's convention."""
    from sklearn.metrics import precision_recall_curve

    test = scores.loc[scores["split"] == "test"]
    if test["label"].nunique() < 2:
        raise DataError("an F1-optimal threshold needs good and anomalous test images in scores.csv")
    log.warning("threshold f1: fitted on the labelled test images, so it is optimistic on that test set")
    precision, recall, thresholds = precision_recall_curve(test["label"], test["score"])
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
