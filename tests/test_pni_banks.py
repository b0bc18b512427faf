import pytest
import torch

from anomalyflow.errors import ConfigError
from anomalyflow.patches.coreset import greedy_coreset
from anomalyflow.pni.banks import bank_sizes, jl_dimension, projection_dim, select_banks


def _features(n=6, h=8, w=8, e=16, seed=0):
    return torch.randn(n, h, w, e, generator=torch.Generator().manual_seed(seed))


def _rows_in(rows: torch.Tensor, bank: torch.Tensor) -> list[int]:
    """Index in ``bank`` of each row of ``rows`` (exact match), -1 if absent."""
    equal = (rows.unsqueeze(1) == bank.unsqueeze(0)).all(-1)
    return [int(torch.nonzero(r)[0]) if r.any() else -1 for r in equal]


def test_dist_is_a_prefix_of_emb_when_emb_is_larger():
    features = _features()
    banks = select_banks(features, edge=2, fraction=0.5, dist_size=20, projection=None, seed=3)
    assert banks.emb.shape == (48, 16) and banks.dist.shape == (20, 16)  # 0.5 * 6 * 16 interior features
    torch.testing.assert_close(banks.dist, banks.emb[:20], rtol=0, atol=0)
    assert banks.emb_edge.shape == (192, 16)  # 0.5 * 6 * 64


def test_emb_is_a_prefix_of_dist_when_dist_is_larger():
    banks = select_banks(_features(), edge=2, fraction=0.1, dist_size=30, projection=None, seed=3)
    assert len(banks.emb) == 9 and len(banks.dist) == 30
    torch.testing.assert_close(banks.emb, banks.dist[:9], rtol=0, atol=0)


def test_emb_comes_from_interior_features_and_is_pni_greedy():
    features = _features()
    banks = select_banks(features, edge=2, fraction=0.25, dist_size=4, projection=None, seed=5)
    interior = features[:, 2:-2, 2:-2].reshape(-1, 16)
    positions = _rows_in(banks.emb, interior)
    assert -1 not in positions
    expected = greedy_coreset(interior, len(banks.emb), projection_dim=None, include_start=False, seed=5)
    assert positions == expected.tolist()
    edge_positions = _rows_in(banks.emb_edge, features.reshape(-1, 16))
    assert -1 not in edge_positions and len(set(edge_positions)) == len(edge_positions)


def test_too_small_training_sets_are_config_errors():
    with pytest.raises(ConfigError, match="dist_coreset_size"):
        bank_sizes(100, 200, 0.01, 2048)
    with pytest.raises(ConfigError, match="coreset_fraction"):
        bank_sizes(50, 100, 0.01, 10)
    assert bank_sizes(655424, 752400, 0.01, 2048) == (6554, 2048, 7524)  # bottle at 480 (C3, C10)


def test_projection_dimension_follows_sklearn():
    from sklearn.random_projection import johnson_lindenstrauss_min_dim

    for n in (1000, 655424):
        assert jl_dimension(n) == int(johnson_lindenstrauss_min_dim(n, eps=0.9))
    assert projection_dim("auto", 655424, 1024) == jl_dimension(655424)
    assert projection_dim("auto", 655424, 64) is None  # no projection up to the full dimension
    assert projection_dim(0, 10, 64) is None and projection_dim(32, 10, 64) == 32
    with pytest.raises(ConfigError, match="coreset_projection"):
        projection_dim("big", 10, 64)
