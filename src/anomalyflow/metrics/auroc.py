"""Exact image and pixel AUROC (the Mann-Whitney statistic).

Both AUROCs are the Mann-Whitney statistic: AUC = P(score of an anomalous sample > score of a good one)
+ ½·P(equal). That is exactly what sklearn's ``roc_auc_score`` computes (its trapezoid over the ROC
curve treats a tie group as one diagonal step, which is the ½·P(equal) term), so we agree with it to
rounding. We compute it as an integer count, with value-only sorts and ``searchsorted`` instead of an
argsort: on this project's 2-core CPU ``np.sort`` of 6.5 M float32 takes ~50 ms while ``np.argsort``
takes ~460 ms and ``torch.sort`` ~830 ms (it always returns indices).

Inputs go through :mod:`anomalyflow.metrics.arrays` (numpy, or torch for CUDA tensors).
"""

from __future__ import annotations

import numpy as np
import torch

from anomalyflow.errors import DataError
from anomalyflow.metrics.arrays import Array, ArrayLike, as_array, binary_masks, check_same_shape, float_scores, like

__all__ = ["image_auroc", "pixel_auroc"]


# --------------------------------------------------------------------------------------------------
# the rank-sum statistic
# --------------------------------------------------------------------------------------------------

def sort_values(x: Array) -> Array:
    """Ascending values only (no indices: the value-only numpy sort is ~10x faster than argsort)."""
    return torch.sort(x).values if isinstance(x, torch.Tensor) else np.sort(x)


def count_below(sorted_values: Array, queries: Array, *, right: bool) -> int:
    """Σ over ``queries`` of #values < q (or ≤ q when ``right``), as an exact Python int."""
    if isinstance(sorted_values, torch.Tensor):
        return int(torch.searchsorted(sorted_values, queries, right=right).sum().item())
    return int(np.searchsorted(sorted_values, queries, side="right" if right else "left").sum(dtype=np.int64))


def rank_sum_auc(positives: Array, negatives: Array) -> float:
    """Exact Mann-Whitney AUC of two 1-D score sets (ties count ½), like sklearn's roc_auc_score.

    With both sets sorted, Σ_p [#neg < p] + [#neg ≤ p] = 2·U is an integer, so the only rounding is
    the final division. The smaller set is looked up in the larger one (U_pos + U_neg = n_pos·n_neg).
    """
    n_pos, n_neg = int(positives.shape[0]), int(negatives.shape[0])
    if n_pos <= n_neg:
        big, small = sort_values(negatives), sort_values(positives)
    else:
        big, small = sort_values(positives), sort_values(negatives)
    twice_u = count_below(big, small, right=False) + count_below(big, small, right=True)
    pairs = 2 * n_pos * n_neg
    return twice_u / pairs if n_pos <= n_neg else (pairs - twice_u) / pairs


# --------------------------------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------------------------------

def image_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Exact ROC AUC of image scores; labels 0 (good) / 1 (anomalous), shape ``[N]`` each.

    Ties are handled like sklearn's ``roc_auc_score`` (average rank). Raises :class:`DataError` when
    only one class is present or the shapes differ, :class:`NumericalError` on NaN/inf scores.
    """
    scores_a = float_scores(as_array(scores), "image scores")
    labels_a = as_array(labels)
    if isinstance(labels_a, torch.Tensor) != isinstance(scores_a, torch.Tensor):
        labels_a = like(labels_a, scores_a)
    if tuple(labels_a.shape) != tuple(scores_a.shape) or len(scores_a.shape) != 1:
        raise DataError(f"image labels have shape {tuple(labels_a.shape)} and image scores shape "
                        f"{tuple(scores_a.shape)}; both must be [N] with one entry per image")
    good, bad = _binary_labels(labels_a)
    n_good, n_bad = int(good.sum()), int(bad.sum())
    if n_good == 0 or n_bad == 0:
        raise DataError(f"image AUROC needs both good and anomalous images, but found {n_good} good and "
                        f"{n_bad} anomalous")
    return rank_sum_auc(scores_a[bad], scores_a[good])


def pixel_auroc(masks: ArrayLike, maps: ArrayLike) -> float:
    """Exact ROC AUC over all pixels of all images (one ROC, not a mean per image).

    ``masks`` bool ``[N,H,W]`` (True = anomalous pixel), ``maps`` float ``[N,H,W]``; any equal shapes
    work. Raises :class:`DataError` on a shape mismatch or when the masks have no anomalous (or no
    normal) pixel, :class:`NumericalError` on NaN/inf in the maps.
    """
    maps_a = float_scores(as_array(maps), "anomaly maps")
    masks_a = binary_masks(like(as_array(masks), maps_a))
    check_same_shape(masks_a, maps_a)
    positives, negatives = maps_a[masks_a], maps_a[~masks_a]
    if positives.shape[0] == 0:
        raise DataError(f"pixel AUROC needs anomalous pixels, but the ground-truth masks of all "
                        f"{maps_a.shape[0] if len(maps_a.shape) > 2 else 1} image(s) are empty")
    if negatives.shape[0] == 0:
        raise DataError("pixel AUROC needs normal pixels, but every ground-truth pixel is anomalous")
    return rank_sum_auc(positives, negatives)


def _binary_labels(labels: Array) -> tuple[Array, Array]:
    if isinstance(labels, torch.Tensor):
        good, bad = labels == 0, labels == 1
    else:
        if labels.dtype.kind not in "biuf":
            raise DataError(f"image labels must be 0 (good) or 1 (anomalous), got dtype {labels.dtype}")
        good, bad = labels == 0, labels == 1
    if not bool((good | bad).all()):
        raise DataError("image labels must be 0 (good) or 1 (anomalous); found other values")
    return good, bad
