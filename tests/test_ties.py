"""Tie-breaking of a category's anomaly maps (anomalyflow.ties): order kept across maps, ties gone where
float32 has room, deterministic, and the MVTec LOCO evaluator's initial thresholds distinct afterwards."""

import numpy as np
import pytest
from map_checks import assert_order_kept, loco_initial_thresholds

from anomalyflow.errors import NumericalError
from anomalyflow.ties import (
    TieStats,
    bit_reversed,
    break_ties,
    float_ordinals,
    long_run,
    ordinal_floats,
    tie_room,
)


def with_room(maps: np.ndarray, stats: TieStats | None = None) -> np.ndarray:
    return break_ties(maps, tie_room(lambda: [maps]), stats)


def test_ordinals_are_the_float_order_with_one_zero():
    values = np.array([-np.finfo(np.float32).max, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1e-38, 0.5, 1.0,
                       np.finfo(np.float32).max], dtype=np.float32)
    ordinals = float_ordinals(values)
    assert ordinals[3] == ordinals[4] == 0 and ordinals[2] == -1 and ordinals[5] == 1
    assert (np.diff(np.delete(ordinals, 3)) > 0).all()
    np.testing.assert_array_equal(ordinal_floats(ordinals), values + np.float32(0.0))
    # Adjacent floats are adjacent integers, across zero and across exponents.
    for x in np.array([-1.0, -1e-45, 0.0, 0.5, 1.0, 1e30], dtype=np.float32):
        up = np.nextafter(x, np.float32(np.inf))
        assert float_ordinals(up) - float_ordinals(x) == 1


def test_zero_border_becomes_distinct_subnormals_and_unblocks_the_loco_thresholds():
    # EfficientAD reference code's 4-pixel zero padding of a 64x64 map, upsampled: ~23% exact zeros per map,
    # inside the range of the other values (normalised maps are negative and positive).
    rng = np.random.default_rng(0)
    maps = rng.normal(0, 0.05, (6, 64, 64)).astype(np.float32)
    maps[:, :8], maps[:, -8:], maps[:, :, :8], maps[:, :, -8:] = 0, 0, 0, 0
    before = loco_initial_thresholds(maps)
    assert len(set(before)) < len(before)  # the script's assertion would fail on these maps
    stats = TieStats()
    after = with_room(maps, stats)
    thresholds = loco_initial_thresholds(after)
    assert len(set(thresholds)) == len(thresholds)
    assert_order_kept(maps, after)
    for old, new in zip(maps, after, strict=True):
        assert np.unique(new).size == new.size  # every map's values are distinct
        # The zeros became the smallest subnormals, ordered by their bit-reversed pixel index.
        zeros = np.flatnonzero(old.ravel() == 0)
        ranks = np.empty(zeros.size, np.int64)
        ranks[np.argsort(bit_reversed(zeros, 12))] = np.arange(zeros.size)
        np.testing.assert_array_equal(float_ordinals(new.ravel()[zeros]), ranks)
    assert stats.largest_run == int((maps[0] == 0).sum()) and stats.largest_shared == 1
    assert stats.largest_shift < 1e-38 and stats.loco_safe()


def test_a_run_without_room_is_spread_over_the_floats_below_the_next_value():
    # Map a: 16 pixels of 0.5; map b holds a value 4 floats above 0.5: only 4 distinct values fit in between.
    a = np.full((4, 4), 0.5, np.float32)
    b = np.full((4, 4), 2.0, np.float32)
    b[0, 0] = ordinal_floats(float_ordinals(np.float32(0.5)) + 4)
    maps = np.stack([a, b])
    stats = TieStats()
    after = with_room(maps, stats)
    assert_order_kept(maps, after)
    steps = float_ordinals(after[0]) - float_ordinals(np.float32(0.5))
    np.testing.assert_array_equal(np.bincount(steps.ravel()), [4, 4, 4, 4])
    assert all(sorted(row) == [0, 1, 2, 3] for row in steps)  # bit-reversed order: every row gets every level
    assert after[1, 0, 0] == b[0, 0]  # the value above is left where it is
    # b's 15 pixels of 2.0 are the largest values of the category: unlimited room above.
    assert np.unique(after[1]).size == 16
    assert stats.largest_shared == 4


def test_only_runs_covering_a_thousandth_of_a_map_are_broken():
    # 4096 pixels: runs of 5 or more equal values are long; bilinear upsampling leaves many shorter ones.
    rng = np.random.default_rng(2)
    maps = rng.random((1, 64, 64), dtype=np.float32)
    maps[0, 0, :4] = 0.25   # a run of 4: left as it is
    maps[0, 1, :5] = 0.75   # a run of 5: broken
    assert long_run(maps[0].size) == 5
    stats = TieStats()
    after = with_room(maps, stats)
    np.testing.assert_array_equal(after[0, 0, :4], maps[0, 0, :4])
    assert np.unique(after[0, 1, :5]).size == 5 and stats.tied_pixels == 5 and stats.largest_run == 5
    changed = after != maps
    assert changed.sum() == 4 and not changed[0, 2:].any()  # the first pixel of the run keeps its value


def test_ties_between_maps_stay_and_equal_maps_stay_equal():
    maps = np.stack([np.array([[0.25, 0.25], [0.75, 0.75]], np.float32)] * 3)
    after = with_room(maps)
    assert_order_kept(maps, after)
    np.testing.assert_array_equal(after[0], after[1])
    np.testing.assert_array_equal(after[1], after[2])


def test_residual_ties_that_could_stop_the_loco_script_are_reported():
    # Half of all pixels hold 0.5 and the other map holds the very next float: float32 has no room to break
    # the run without moving it past values of the other map.
    a = np.full((8, 8), 0.5, np.float32)
    b = np.full((8, 8), np.nextafter(np.float32(0.5), np.float32(1.0)), np.float32)
    b[0, 0] = 3.0
    stats = TieStats()
    after = with_room(np.stack([a, b]), stats)
    np.testing.assert_array_equal(after[0], a)
    assert stats.largest_total() >= 64 and not stats.loco_safe()


def test_bit_reversal_is_an_involution_that_spreads_neighbours():
    values = np.arange(1 << 10)
    reversed_ = bit_reversed(values, 10)
    np.testing.assert_array_equal(np.sort(reversed_), values)
    np.testing.assert_array_equal(bit_reversed(reversed_, 10), values)
    np.testing.assert_array_equal(bit_reversed(np.arange(8), 3), [0, 4, 2, 6, 1, 5, 3, 7])
    # Any 64 consecutive indices (a defect's run of pixels) land in every 16th of the range exactly 4 times.
    block = reversed_[300:364] // 64
    np.testing.assert_array_equal(np.bincount(block, minlength=16), np.full(16, 4))


def test_deterministic_and_batch_independent():
    rng = np.random.default_rng(1)
    maps = rng.integers(0, 5, (5, 9, 7)).astype(np.float32) / 4
    room = tie_room(lambda: [maps[:2], maps[2:]])
    whole = break_ties(maps, room)
    assert room.keys.size == 5
    np.testing.assert_array_equal(whole, np.concatenate([break_ties(maps[:3], room), break_ties(maps[3:], room)]))
    np.testing.assert_array_equal(whole[0], break_ties(maps[0], room))
    assert_order_kept(maps, whole)


def test_bad_inputs():
    maps = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="TieRoom"):
        break_ties(maps, tie_room(lambda: [np.ones((1, 3, 3), np.float32)]))
    maps[0, 0, 0] = np.nan
    with pytest.raises(NumericalError, match="NaN"):
        tie_room(lambda: [maps])
