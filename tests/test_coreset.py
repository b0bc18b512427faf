import numpy as np
import pytest
import torch

from anomalyflow.errors import ConfigError
from anomalyflow.patches import coreset as coreset_module
from anomalyflow.patches.coreset import coreset_size, greedy_coreset


def textbook_greedy(points: np.ndarray, n: int, start: int, include_start: bool = True) -> list[int]:
    """The slow reference: explicit distances to every selected centre, argmax with ties to the lowest index."""
    centres = [start]
    chosen = [start] if include_start else []
    while len(chosen) < n:
        nearest = np.min([np.sqrt(((points - points[c]) ** 2).sum(1)) for c in centres], axis=0)
        best = int(np.flatnonzero(nearest == nearest.max())[0])
        centres.append(best)
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("include_start", [True, False])
def test_unprojected_greedy_is_the_textbook_sequence(seed, include_start):
    rng = np.random.default_rng(seed)
    # Small integers make many exact ties (duplicates and equal distances): tie-breaking is tested.
    points = rng.integers(-3, 4, size=(300, 5)).astype(np.float64)
    start = int(rng.integers(300))
    expected = textbook_greedy(points, 25, start, include_start)
    got = greedy_coreset(points, 25, projection_dim=None, start=start, include_start=include_start)
    assert got.tolist() == expected


def test_chunking_does_not_change_the_selection():
    points = torch.from_numpy(np.random.default_rng(1).normal(size=(2000, 16)))
    whole = greedy_coreset(points, 50, projection_dim=None, start=3)
    chunked = greedy_coreset(points, 50, projection_dim=None, start=3, chunk_size=64)
    assert whole.tolist() == chunked.tolist()


def test_projection_is_seeded_and_selects_distinct_points():
    points = np.random.default_rng(2).normal(size=(3000, 256)).astype(np.float32)
    a = greedy_coreset(points, 100, projection_dim=32, seed=7)
    b = greedy_coreset(points, 100, projection_dim=32, seed=7)
    assert a.tolist() == b.tolist()
    assert len(set(a.tolist())) == 100


def test_coreset_covers_outliers_first():
    points = np.zeros((100, 3))
    points[:, 0] = np.linspace(0, 1, 100)
    points[57] = [50.0, 0, 0]
    assert greedy_coreset(points, 2, projection_dim=None, start=0).tolist() == [0, 57]


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="between 1 and"):
        greedy_coreset(np.zeros((5, 2)), 6, projection_dim=None)
    assert coreset_size(1000, 0.1) == 100
    assert coreset_size(5, 0.01) == 1


def int8_rounded(points: np.ndarray) -> np.ndarray:
    """What int8 storage keeps of each row: per-row scale max|x|/127, codes round(x/scale)."""
    scale = np.abs(points).max(1, keepdims=True) / 127
    scale[scale == 0] = 1
    return np.round(points / scale) * scale


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("include_start", [True, False])
def test_int8_storage_is_the_textbook_greedy_on_the_rounded_points(seed, include_start, monkeypatch):
    rng = np.random.default_rng(seed)
    # Rows of very different magnitudes, and one zero row: each row keeps its own scale.
    points = rng.normal(size=(300, 12)) * rng.uniform(0.01, 100, size=(300, 1))
    points[17] = 0
    start = int(rng.integers(300))
    expected = textbook_greedy(int8_rounded(points), 30, start, include_start)
    got = greedy_coreset(points.astype(np.float32), 30, projection_dim=None, start=start,
                         include_start=include_start, storage="int8", chunk_size=128)
    assert got.tolist() == expected
    # Where no exact int8 matmul runs (CUDA), the same rounded points go through the float matvec.
    monkeypatch.setattr(coreset_module, "int8_matmul", lambda device: False)
    assert greedy_coreset(points.astype(np.float32), 30, projection_dim=None, start=start,
                          include_start=include_start, storage="int8").tolist() == expected
    monkeypatch.undo()
    # ... and the rounding is real: on these points float32 storage picks differently somewhere.
    if seed == 0 and include_start:
        exact = greedy_coreset(points, 300, projection_dim=None, start=start, storage="float32")
        rounded = greedy_coreset(points, 300, projection_dim=None, start=start, storage="int8")
        assert exact.tolist() != rounded.tolist()


def test_auto_storage_keeps_raw_features_exact_and_rounds_projected_ones_on_the_cpu():
    points = np.random.default_rng(3).normal(size=(2000, 64)).astype(np.float32)
    raw = greedy_coreset(points, 40, projection_dim=None, start=5)
    assert greedy_coreset(points, 40, projection_dim=None, start=5, storage="auto").tolist() == raw.tolist()
    projected = {storage: greedy_coreset(points, 40, projection_dim=16, seed=1, storage=storage).tolist()
                 for storage in ("auto", "int8", "float32")}
    assert projected["auto"] == projected["int8"]
    assert len(set(projected["int8"])) == 40


def test_unknown_storage_is_a_config_error():
    with pytest.raises(ConfigError, match="storage must be float32, int8 or auto, not 'fp16'"):
        greedy_coreset(np.zeros((5, 2)), 2, storage="fp16")
