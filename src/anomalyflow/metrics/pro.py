"""AU-PRO exactly as the official MVTec AD evaluation computes it (Bergmann et al., IJCV 2021).

The official protocol (``generic_util.compute_pro`` / ``trapezoid`` of the MVTec AD evaluation code,
restated in docs/methods.md §D):

1. label the ground-truth regions of each image as 8-connected components (``scipy.ndimage.label``
   with a 3×3 structure of ones);
2. sort all pixels of all images once by descending score; walking down that order, a good pixel
   (label 0, from defective *and* good images) adds 1/#good-pixels to the FPR, a pixel of region r
   adds 1/(|r|·#regions) to the PRO (= mean over regions of the covered fraction);
3. within a run of tied scores only the last point is kept (no threshold can split a tie); the
   curve starts at (0, 0);
4. integrate with the trapezoid rule up to ``fpr_limit`` (the curve is interpolated linearly at the
   limit) and divide by ``fpr_limit``.

This is the exact curve at every distinct score, not a sweep over a fixed set of thresholds (as
anomalib's binned PRO or the PNI code's 2000 linear thresholds are).

Implementation, for speed and bounded memory:

- only pixels scoring at least the score at which the FPR reaches ``fpr_limit`` can matter; that score
  is the k-th largest good-pixel score, found with a partition (O(n), no sort), so for 0.3 only about
  a third of the good pixels are sorted;
- each pixel becomes one int64 whose high bits are an order-preserving int32 key of its score and
  whose low 31 bits are its region id (0 = good). One value-only sort of those ints orders pixels by
  score and carries the region along; ``np.sort`` on int64 is ~5x faster than ``np.argsort`` here.
- scores are float32 (float64 maps that float32 holds exactly are narrowed; others keep exact ties
  through their dense rank), region ids int32, sums int64 / float64.

The same code runs with torch on CUDA tensors (labelling stays on the CPU: scipy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from anomalyflow.errors import ConfigError, DataError
from anomalyflow.metrics.arrays import (
    Array,
    ArrayLike,
    as_array,
    binary_masks,
    check_same_shape,
    float_scores,
    like,
    order_keys,
    to_numpy,
)

__all__ = ["aupro", "pro_curve"]

_PAYLOAD_BITS = 31
_PAYLOAD_MASK = (1 << _PAYLOAD_BITS) - 1

# 8-connectivity inside each image and none across images: ndimage.label on the [N,H,W] stack with
# the 3×3 official structure in the middle plane only labels every image at once, ids unique overall.
_STACK_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STACK_STRUCTURE[1] = True


# --------------------------------------------------------------------------------------------------
# the curve engine (shared with loco.py's sPRO)
# --------------------------------------------------------------------------------------------------

def check_fpr_limit(limit: float) -> float:
    limit = float(limit)
    if not 0.0 < limit <= 1.0:
        raise ConfigError(f"fpr_limit must be in (0, 1], got {limit}")
    return limit


def negatives_to_reach(limit: float, n_neg: int) -> int:
    """The smallest k with k / n_neg ≥ limit, in the same float64 arithmetic as the curve's FPRs."""
    k = min(max(1, math.ceil(limit * n_neg)), n_neg)
    while k > 1 and (k - 1) / n_neg >= limit:
        k -= 1
    while k < n_neg and k / n_neg < limit:
        k += 1
    return k


def overlap_curve(neg_scores: Array, pos_scores: Array, pos_ids: Array, increments: Callable[[Array], Array],
                  n_neg: int, fpr_limit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The exact (FPR, overlap) curve at every distinct score, descending, starting at (0, 0).

    ``neg_scores``: scores of all good pixels, each adding 1/``n_neg`` to the FPR. ``pos_scores`` and
    ``pos_ids`` (1 … 2³¹−1): the positive entries and what they belong to (region, defect channel).
    ``increments(ids)`` gets the ids of all kept entries in descending score order (0 for good pixels)
    and returns what each adds to the overlap (float64). With ``fpr_limit`` the curve stops at the first
    point whose FPR reaches the limit, which is all the integration needs, and only entries scoring at
    least as high as that point are sorted.
    """
    if fpr_limit is not None and fpr_limit < 1.0:
        k = negatives_to_reach(fpr_limit, n_neg)
        # The k-th largest good-pixel score: every entry scoring below it comes after the first point
        # with FPR ≥ limit, so it cannot change the integral. Selection, not sorting: O(n).
        threshold = _kth_smallest(neg_scores, n_neg - k)
        neg_scores = neg_scores[neg_scores >= threshold]
        keep = pos_scores >= threshold
        pos_scores, pos_ids = pos_scores[keep], pos_ids[keep]

    n_kept_neg = int(neg_scores.shape[0])
    # Keys for good pixels and entries together, so that dense ranks (float64 fallback) are shared.
    packed = _to_int64(order_keys(_concat([neg_scores, pos_scores]))) << _PAYLOAD_BITS
    del neg_scores, pos_scores
    packed[n_kept_neg:] |= _to_int64(pos_ids)
    packed = _sort_descending(packed)
    keys = packed >> _PAYLOAD_BITS
    ids = packed & _PAYLOAD_MASK
    del packed
    cum_fp = _cumsum(ids == 0)
    cum_overlap = _cumsum(increments(ids))
    del ids
    # Official protocol: of a run of tied scores only the last point exists (a threshold either takes
    # the whole tie or none of it).
    ends = _group_ends(keys)
    fprs = to_numpy(cum_fp[ends]).astype(np.float64) / n_neg
    overlaps = to_numpy(cum_overlap[ends]).astype(np.float64)
    # Rounding can push the sums a hair past 1 (the official code clips the same way).
    fprs = np.clip(np.concatenate(([0.0], fprs)), 0.0, 1.0)
    overlaps = np.clip(np.concatenate(([0.0], overlaps)), 0.0, 1.0)
    return fprs, overlaps


def area_to_limit(fprs: np.ndarray, values: np.ndarray, limit: float) -> float:
    """Trapezoid area under the curve from FPR 0 to ``limit``, divided by ``limit``.

    As the official ``trapezoid``: points with FPR ≤ limit are integrated as they are; if the limit
    falls strictly between two points, the curve is interpolated linearly there and the partial
    segment is added. Vertical steps (equal FPRs) add nothing.
    """
    limit = check_fpr_limit(limit)
    inside = int(np.searchsorted(fprs, limit, side="right"))
    x, y = fprs[:inside], values[:inside]
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1])) / 2.0)
    if x[-1] < limit:
        if inside == len(fprs):
            raise ValueError(f"curve ends at FPR {x[-1]} before the integration limit {limit}")
        x0, y0, x1, y1 = fprs[inside - 1], values[inside - 1], fprs[inside], values[inside]
        y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
        area += (limit - x0) * (y0 + y_limit) / 2.0
    return area / limit


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------

def pro_curve(masks: ArrayLike, maps: ArrayLike, *, fpr_limit: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The official MVTec AD PRO curve: (FPRs, PROs) at every distinct score, from (0, 0) down.

    ``masks`` bool ``[N,H,W]`` (or ``[H,W]``, or ``[N,1,H,W]``), ``maps`` float of the same shape.
    Returns float64 numpy arrays. With ``fpr_limit`` the curve stops at the first point whose FPR
    reaches it (that is all :func:`aupro` needs); without it the curve runs to FPR 1.
    """
    if fpr_limit is not None:
        fpr_limit = check_fpr_limit(fpr_limit)
    neg_scores, pos_scores, region_ids, weights, n_neg = _pro_entries(masks, maps)
    return overlap_curve(neg_scores, pos_scores, region_ids, lambda ids: weights[ids], n_neg, fpr_limit)


def aupro(masks: ArrayLike, maps: ArrayLike, fpr_limit: float = 0.3) -> float:
    """Area under the official MVTec AD PRO curve up to ``fpr_limit``, normalised by the limit.

    Raises :class:`DataError` on a shape mismatch, when no image has a ground-truth region, or when
    there is no good pixel; :class:`NumericalError` on NaN/inf in the maps.
    """
    fpr_limit = check_fpr_limit(fpr_limit)
    fprs, pros = pro_curve(masks, maps, fpr_limit=fpr_limit)
    return area_to_limit(fprs, pros, fpr_limit)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def image_stack_shape(shape: tuple[int, ...], what: str = "anomaly maps") -> tuple[int, int, int]:
    """[N,H,W] for maps given as [H,W], [N,H,W] or [N,1,H,W]."""
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 4 and shape[1] == 1:
        return (shape[0], shape[2], shape[3])
    raise DataError(f"{what} must be [N,H,W] (or [H,W], [N,1,H,W]), got shape {shape}")


def label_regions(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Official region labelling: 8-connected components per image, ids 1..n unique over the stack."""
    labels, n_regions = ndimage.label(masks, structure=_STACK_STRUCTURE)
    return labels, int(n_regions)


def _pro_entries(masks: ArrayLike, maps: ArrayLike) -> tuple[Array, Array, Array, Array, int]:
    maps_a = float_scores(as_array(maps), "anomaly maps")
    masks_a = binary_masks(like(as_array(masks), maps_a))
    check_same_shape(masks_a, maps_a)
    stack = image_stack_shape(tuple(maps_a.shape))
    labels, n_regions = label_regions(to_numpy(masks_a).reshape(stack))
    if n_regions == 0:
        raise DataError(f"AUPRO needs anomalous regions, but the ground-truth masks of all {stack[0]} "
                        "image(s) are empty")
    sizes = np.bincount(labels.ravel(), minlength=n_regions + 1)
    n_neg = int(sizes[0])
    if n_neg == 0:
        raise DataError("AUPRO needs normal pixels to measure false positives, but every ground-truth "
                        "pixel is anomalous")
    # A pixel of region r adds 1 / (|r| · #regions): summed over the covered pixels this is the mean
    # over regions of the covered fraction.
    weights = 1.0 / (sizes.astype(np.float64) * n_regions)
    weights[0] = 0.0
    flat_labels = like(labels.reshape(-1), maps_a)
    scores = maps_a.reshape(-1)
    good = flat_labels == 0
    return scores[good], scores[~good], flat_labels[~good], like(weights, maps_a), n_neg


def _to_int64(x: Array) -> Array:
    return x.long() if isinstance(x, torch.Tensor) else x.astype(np.int64, copy=False)


def _concat(parts: list[Array]) -> Array:
    return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)


def _sort_descending(x: Array) -> Array:
    if isinstance(x, torch.Tensor):
        return torch.sort(x, descending=True).values
    x.sort()  # in place: value-only, no index array
    return x[::-1]


def _cumsum(x: Array) -> Array:
    if isinstance(x, torch.Tensor):
        return torch.cumsum(x, 0, dtype=torch.float64 if x.is_floating_point() else torch.int64)
    return np.cumsum(x, dtype=np.float64 if x.dtype.kind == "f" else np.int64)


def _kth_smallest(x: Array, index: int) -> Array:
    """The value at 0-based ``index`` of the ascending order, without sorting (O(n) selection)."""
    if isinstance(x, torch.Tensor):
        return torch.kthvalue(x, index + 1).values
    return np.partition(x, index)[index]


def _group_ends(keys: Array) -> Array:
    """Indices of the last element of each run of equal keys."""
    n = int(keys.shape[0])
    if isinstance(keys, torch.Tensor):
        changes = torch.nonzero(keys[1:] != keys[:-1]).reshape(-1)
        return torch.cat([changes, torch.tensor([n - 1], device=keys.device)])
    return np.append(np.flatnonzero(keys[1:] != keys[:-1]), n - 1)
