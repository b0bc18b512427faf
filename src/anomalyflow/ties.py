"""Breaking long runs of equal values in a category's anomaly maps: deterministic, order-preserving, float32.

Why. The MVTec LOCO AD evaluation script (v2.0, ``MetricsAggregator`` in its ``src/aggregation.py``)
starts its threshold search from 48 scores taken at equidistant positions of the sorted scores of all
maps of a category, plus the maximum + 1e-6 and the minimum − 1e-6, and asserts that these 50
thresholds are distinct. When one value covers more than about 1/49 of all pixels (the zero border of
the EfficientAD reference code's 4-pixel map padding, docs/methods.md A6; a constant background) two
thresholds coincide and the script stops with an ``AssertionError`` (nelson1425/EfficientAD#10,
docs/methods.md E9).

Which ties. Only *long runs*: a value that covers at least :data:`LONG_RUN` (1/1000) of one map's pixels.
Shorter runs (bilinear upsampling leaves many runs of 2-100 equal values) cannot stop the script, since a
value that covers less than 1/1000 of every map covers less than 1/1000 of all pixels; they are left as
they are, so the official tie rules still apply to them.

How. Every finite float32 is an integer *ordinal*: the ordinals follow the float order, adjacent floats
differ by one and ±0 share ordinal 0 (:func:`float_ordinals`). The ``k`` pixels of a long run with
ordinal ``v`` get the ordinals ``v, v+1, …, v+k−1``: the ``k`` smallest float32 values ≥ the original, a
shift of at most ``k−1`` units in the last place (near 0: subnormal steps of 1.4e-45). A run is never moved
onto or past ``v + gap``, the next larger value present in *any* map of the category, so every pair of
pixels that differed keeps its order, across maps too. Where the gap is smaller than the run (a value one
ulp above it elsewhere), the run is spread evenly over the ``gap`` floats available and some ties remain
(at most ⌈k/gap⌉ pixels share a value; :class:`TieStats` bounds what that leaves for the LOCO script); a
run at the category's largest value may rise up to the largest finite float32.

Which pixel of a run gets which new value: the order of their bit-reversed pixel indices (row-major),
the van der Corput sequence. It is deterministic and spreads any cluster of pixels (a defect lying in a
constant region) evenly over the run. Raster order would not: a defect near the bottom of a constant
border would rank above all of the border. On the real screw maps with a zero border (41% of all pixels
one exact zero, 6.5% of the defect pixels in it) raster order changes the pixel AUROC by 7e-3, this order
by 9e-5 (tests/test_official_maps.py).

What it changes. Metrics that depend only on the order of the scores (pixel AUROC, PRO, sPRO) change only
through pixel pairs that were exactly tied and differ in label (or region). The official rules count such
a tie as ½ (AUROC) and join the curve points before and after it with a straight line (PRO, sPRO), which
is what an evenly mixed order gives on average; the difference is the imbalance of the defect pixels'
ranks inside the run.

Finding the gaps needs every map of the category before the first one is written, so :func:`tie_room`
reads the maps twice (its ``batches`` argument is called once per pass) and :func:`break_ties` then
rewrites them batch by batch; no more than one batch is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from anomalyflow.errors import NumericalError

__all__ = ["LONG_RUN", "TieRoom", "TieStats", "bit_reversed", "break_ties", "float_ordinals", "long_run",
           "ordinal_floats", "tie_room"]

_SIGN = np.int64(1 << 31)
#: The ordinal of the largest finite float32 (3.4028235e38); +inf would be the next one.
ORDINAL_MAX = np.int64(0x7F7FFFFF)
_INDEX_BITS_MAX = 31  # 32 bits of shifted ordinal + 31 bits of pixel index fit a signed int64
#: A run of equal values in one map is broken when it covers at least this fraction of the map's pixels.
LONG_RUN = 1e-3


def long_run(pixels: int) -> int:
    """The shortest run of equal values that :func:`break_ties` breaks in a map of ``pixels`` pixels (≥ 2)."""
    return max(2, int(np.ceil(pixels * LONG_RUN)))


def float_ordinals(values: np.ndarray) -> np.ndarray:
    """int64 ordinals of finite float32 ``values`` (any shape): same order, adjacent floats differ by one.

    Non-negative floats keep their bit pattern; a negative float with magnitude bits ``m`` becomes −m, so
    −0.0 and +0.0 are both 0 and the smallest subnormals are ±1. Inverse: :func:`ordinal_floats`.
    """
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32).astype(np.int64)
    return np.where(bits >= _SIGN, _SIGN - bits, bits)


def ordinal_floats(ordinals: np.ndarray) -> np.ndarray:
    """float32 values of int64 ``ordinals`` in [−ORDINAL_MAX, ORDINAL_MAX] (the inverse of :func:`float_ordinals`)."""
    ordinals = np.asarray(ordinals, dtype=np.int64)
    return np.where(ordinals < 0, _SIGN - ordinals, ordinals).astype(np.uint32).view(np.float32)


@dataclass(frozen=True)
class TieRoom:
    """For every value that forms a long run in some map of a category (``keys``, sorted int64 ordinals),
    how many floats its runs may use: ``gaps`` = ordinal of the next larger value present in any map − key."""

    keys: np.ndarray
    gaps: np.ndarray

    def gaps_of(self, keys: np.ndarray) -> np.ndarray:
        position = np.searchsorted(self.keys, keys)
        found = position < self.keys.size
        found[found] = self.keys[position[found]] == keys[found]
        if not found.all():
            raise ValueError("these maps have ties the TieRoom was not computed from; build it from the same maps")
        return self.gaps[position]


@dataclass
class TieStats:
    """What :func:`break_ties` did, summed over the maps it was given (for the job's log)."""

    maps: int = 0
    pixels: int = 0
    tied_pixels: int = 0     # pixels in long runs of one value within their map, before
    largest_run: int = 1     # the longest such run
    largest_shared: int = 1  # the most pixels of one map that share a value of a broken run, after
    largest_shift: float = 0.0  # the largest |new − old| value change
    short_runs: int = 0      # Σ over maps of (long_run − 1): the most pixels of a map left sharing a value
    # Values of broken runs still shared by pixels of one map (ordinals) and how many share each, per map.
    residual: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def largest_total(self) -> int:
        """An upper bound on the pixels of all maps together that share one value, after breaking: a value
        left tied in broken runs occurs that often there, and fewer than ``long_run`` times in every map."""
        if not self.residual:
            return self.short_runs
        values = np.concatenate([v for v, _ in self.residual])
        counts = np.concatenate([c for _, c in self.residual])
        _, group = np.unique(values, return_inverse=True)
        return int(np.bincount(group, weights=counts).max()) + self.short_runs

    def loco_safe(self) -> bool:
        """True when no value can cover 1/98 of all pixels, half the spacing of the LOCO script's initial
        thresholds (module doc; the margin covers its random subsampling of large categories)."""
        return self.largest_total() * 98 < self.pixels

    def summary(self) -> str:
        share = self.tied_pixels / self.pixels if self.pixels else 0.0
        return (f"{self.tied_pixels} of {self.pixels} pixels ({share:.2%}) of {self.maps} maps were in runs of one "
                f"value covering at least {LONG_RUN:g} of their map (longest {self.largest_run}); after breaking "
                f"them at most {self.largest_shared} pixel(s) of a map share such a value, and at most "
                f"{self.largest_total()} of all maps share any value; largest value change {self.largest_shift:.3g}")


def tie_room(batches: Callable[[], Iterable[np.ndarray]]) -> TieRoom:
    """The :class:`TieRoom` of all maps ``batches()`` yields (float32 arrays ``[B, H, W]``, finite).

    ``batches`` is called twice (it must yield the same maps each time): once to collect the values of long
    runs (:func:`long_run`), once to find for each of them the next larger value present in any map.
    """
    tied = [_long_runs(_sorted(row))[0] for batch in batches() for row in _rows(batch)]
    keys = np.unique(float_ordinals(np.concatenate(tied))) if tied else np.zeros(0, np.int64)
    following = np.full(keys.shape, ORDINAL_MAX + 1, dtype=np.int64)
    if keys.size:
        queries = ordinal_floats(keys)
        for batch in batches():
            for row in _rows(batch):
                values = _sorted(row)
                position = np.searchsorted(values, queries, side="right")
                found = position < values.size
                following[found] = np.minimum(following[found], float_ordinals(values[position[found]]))
    return TieRoom(keys=keys, gaps=following - keys)


def break_ties(maps: np.ndarray, room: TieRoom, stats: TieStats | None = None) -> np.ndarray:
    """``maps`` (float32 ``[B, H, W]`` or ``[H, W]``) with each map's long runs of one value (:func:`long_run`)
    spread over the next float32 values (module doc); every other pixel keeps its value.

    ``room`` must come from :func:`tie_room` over all maps of the category these belong to (else
    ``ValueError``). Returns a new float32 array of the same shape; ``stats`` (optional) is updated.
    Deterministic: a run's pixels take its new values in the order of their bit-reversed row-major index.
    Raises :class:`NumericalError` on NaN/inf.
    """
    values = np.asarray(maps, dtype=np.float32)
    out = values.copy()
    for row, target in zip(_rows(values), _rows(out), strict=True):
        _break_row(row.ravel(), room, stats, target.reshape(-1))
    return out


def _break_row(flat: np.ndarray, room: TieRoom, stats: TieStats | None, out: np.ndarray) -> None:
    """Write into ``out`` (a copy of ``flat``) the new values of the pixels of ``flat``'s long runs."""
    values, _ = _long_runs(_sorted(flat))
    n = flat.size
    if stats is not None:
        stats.maps += 1
        stats.pixels += n
        stats.short_runs += long_run(n) - 1
    if not values.size:
        return
    index_bits = max(1, (n - 1).bit_length())
    if index_bits > _INDEX_BITS_MAX:
        raise ValueError(f"a map of {n} pixels is too large to break ties in (at most 2^31)")
    slot = np.minimum(np.searchsorted(values, flat), values.size - 1)
    pixels = np.flatnonzero(values[slot] == flat)
    # One value-only sort of (ordinal, tie order) packed into an int64 orders these pixels by value and,
    # within a run, by bit-reversed pixel index; numpy sorts values ~3x faster than it argsorts (metrics/pro.py).
    packed = np.sort(((float_ordinals(flat[pixels]) + _SIGN) << index_bits) | bit_reversed(pixels, index_bits))
    order = bit_reversed(packed & ((np.int64(1) << index_bits) - 1), index_bits)
    ordered = (packed >> index_bits) - _SIGN
    del packed
    starts, lengths = _runs(ordered)
    levels = np.minimum(lengths, room.gaps_of(ordered[starts]))
    run = np.repeat(np.arange(starts.size), lengths)
    rank = np.arange(ordered.size, dtype=np.int64) - starts[run]
    # The r-th of k pixels moves up floor(r·levels/k) floats: r itself when the gap allows (levels = k).
    shifted = ordered + rank * levels[run] // lengths[run]
    out[order] = ordinal_floats(shifted)
    if stats is not None:
        stats.tied_pixels += int(ordered.size)
        stats.largest_run = max(stats.largest_run, int(lengths.max()))
        still, counts = _runs(shifted)  # shifted is still sorted
        left = counts > 1
        if left.any():
            stats.residual.append((shifted[still[left]], counts[left]))
            stats.largest_shared = max(stats.largest_shared, int(counts.max()))
        shift = out[order].astype(np.float64) - flat[order].astype(np.float64)
        stats.largest_shift = max(stats.largest_shift, float(shift.max()))


def bit_reversed(values: np.ndarray, bits: int) -> np.ndarray:
    """The lowest ``bits`` (≤ 32) bits of each non-negative int64 in reverse order: a permutation of
    [0, 2^bits) that is its own inverse. Consecutive integers land far apart and evenly spread (the van der
    Corput sequence), which is why it orders tied pixels (module doc)."""
    x = values.astype(np.uint64)
    for shift, mask in ((1, 0x55555555), (2, 0x33333333), (4, 0x0F0F0F0F), (8, 0x00FF00FF), (16, 0x0000FFFF)):
        x = ((x >> np.uint64(shift)) & np.uint64(mask)) | ((x & np.uint64(mask)) << np.uint64(shift))
    return (x >> np.uint64(32 - bits)).astype(np.int64)


def _rows(maps: np.ndarray) -> Iterable[np.ndarray]:
    """The single maps of a ``[B, H, W]`` batch (a ``[H, W]`` array is one map)."""
    return [maps] if maps.ndim == 2 else list(maps)


def _sorted(row: np.ndarray) -> np.ndarray:
    """The values of one map, ascending, −0.0 made +0.0 (float order = ordinal order, ±0 one value)."""
    _require_finite(row)
    return np.sort(row.ravel() + np.float32(0.0))


def _long_runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of a map's long runs (:func:`long_run`) and their lengths, from its sorted values."""
    starts, lengths = _runs(ordered)
    long = lengths >= long_run(ordered.size)
    return ordered[starts[long]], lengths[long]


def _require_finite(row: np.ndarray) -> None:
    if not np.isfinite(row).all():
        raise NumericalError("anomaly maps contain NaN or infinite values; ties cannot be broken in them")


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal values of a sorted 1-D array."""
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1)).astype(np.int64)
    return starts, np.diff(np.append(starts, ordered.size))
