import numpy as np
import pytest
import torch

from anomalyflow.errors import ConfigError
from anomalyflow.pni.coreset import coreset_size, greedy_coreset


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
