"""Checks on tie-broken anomaly maps shared by test_ties.py and test_official_maps.py."""

from __future__ import annotations

import numpy as np


def loco_initial_thresholds(maps: np.ndarray) -> list[float]:
    """The 50 thresholds the MVTec LOCO evaluation script (v2.0) starts from when it can take every score:
    48 scores at equidistant positions of all sorted scores, plus max + 1e-6 and min - 1e-6 (descending);
    it asserts that they are distinct (written from its documented behaviour, not its code)."""
    scores = np.sort(np.asarray(maps).ravel())
    inner = scores[np.linspace(0, scores.size - 1, num=50, dtype=int)[1:-1]]
    return [float(scores[-1]) + 1e-6, *inner[::-1].tolist(), float(scores[0]) - 1e-6]


def order_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys in the float order of float32 ``values`` (−0.0 counted as +0.0)."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    return bits ^ ((bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000))


def assert_order_kept(before: np.ndarray, after: np.ndarray) -> None:
    """Every pair of pixels (any maps) that differed keeps its order, and values only move up.

    Order kept means old_p < old_q implies new_p < new_q; equivalently, with the pixels sorted by their new
    value the old values never decrease, and pixels with equal new values had equal old ones. One
    value-only sort of (new, old) keys packed into a uint64.
    """
    old, new = order_keys(before).ravel(), order_keys(after).ravel()
    assert (new >= old).all()
    packed = (new.astype(np.uint64) << np.uint64(32)) | old
    packed.sort()
    old_by_new = (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    new_sorted = (packed >> np.uint64(32)).astype(np.uint32)
    assert (old_by_new[1:] >= old_by_new[:-1]).all()
    tied = new_sorted[1:] == new_sorted[:-1]
    assert (old_by_new[1:][tied] == old_by_new[:-1][tied]).all()


def long_run_pixels(values: np.ndarray, shortest: int) -> tuple[np.ndarray, int]:
    """Boolean mask of the pixels of a map whose value occurs at least ``shortest`` times in it, and the
    length of its longest run of one value."""
    ordered = np.sort(values.ravel())
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    lengths = np.diff(np.append(starts, ordered.size))
    return np.isin(values, ordered[starts[lengths >= shortest]]), int(lengths.max())
