"""Decision thresholds on image scores, for `anomalyflow predict`.

``quantile``: the q-quantile of the validation normals' scores (e.g. 0.99 flags about 1 % of normal
images) — computed through the leakage guard, from data the model never was evaluated on.
``f1``: the threshold maximising F1 on a labelled scored set. The only labelled anomalies are in the
test split, so this threshold is fitted on the test set: it is optimistic on that set and offered for
comparison with papers that report it (the PNI analysis script does), never as the default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomalyflow.data.table import require_no_test
from anomalyflow.errors import DataError
from anomalyflow.logs import get_logger

log = get_logger(__name__)


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
    """The F1-optimal threshold on the labelled test rows (see the module docstring: uses test labels)."""
    from sklearn.metrics import precision_recall_curve

    test = scores.loc[scores["split"] == "test"]
    if test["label"].nunique() < 2:
        raise DataError("an F1-optimal threshold needs good and anomalous test images in scores.csv")
    log.warning("threshold f1: fitted on the labelled test images, so it is optimistic on that test set")
    precision, recall, thresholds = precision_recall_curve(test["label"], test["score"])
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
