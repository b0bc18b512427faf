import numpy as np
import pytest
import torch
from torch import nn

from anomalyflow.errors import ConfigError
from anomalyflow.pni.neighbourhood import (
    NeighbourhoodGather,
    NeighbourhoodMLP,
    centre_targets,
    evaluate_mlp,
    interior_positions,
    neighbour_probabilities,
    split_samples,
    train_mlp,
    window_offsets,
)


def slow_vector(maps: np.ndarray, image: int, y: int, x: int, radius: int) -> np.ndarray:
    """C4 read literally: the (2r+1)² window, zeros outside the grid, centre removed, row-major."""
    _, h, w, e = maps.shape
    parts = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            yy, xx = y + dy, x + dx
            parts.append(maps[image, yy, xx] if 0 <= yy < h and 0 <= xx < w else np.zeros(e, maps.dtype))
    return np.concatenate(parts)


def test_window_has_80_offsets_row_major_without_centre():
    offsets = window_offsets(4)
    assert len(offsets) == 80 and offsets[0] == (-4, -4) and offsets[39] == (0, -1) and offsets[40] == (0, 1)


@pytest.mark.parametrize("radius", [1, 4])
def test_gather_equals_the_slow_construction(radius):
    maps = np.random.default_rng(0).normal(size=(3, 7, 9, 5)).astype(np.float32)
    gather = NeighbourhoodGather(torch.from_numpy(maps), radius)
    assert gather.input_dim == ((2 * radius + 1) ** 2 - 1) * 5
    image, row, col = gather.all_positions(0, 3 * 7 * 9)
    got = gather.vectors(image, row, col).numpy()
    expected = np.stack([slow_vector(maps, int(i), int(y), int(x), radius) for i, y, x in zip(image, row, col,
                                                                                          strict=True)])
    np.testing.assert_array_equal(got, expected)


def test_interior_sample_indices_walk_image_row_column():
    image, row, col = interior_positions(torch.arange(2 * 4 * 5), 8, 9, 2)
    assert image.tolist() == [0] * 20 + [1] * 20
    assert (row.min(), row.max(), col.min(), col.max()) == (2, 5, 2, 6)
    assert (row[:6].tolist(), col[:6].tolist()) == ([2, 2, 2, 2, 2, 3], [2, 3, 4, 5, 6, 2])


def test_targets_are_the_nearest_dist_entry_of_each_interior_centre():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(2, 8, 8, 6)).astype(np.float32)
    bank = rng.normal(size=(5, 6)).astype(np.float32)
    gather = NeighbourhoodGather(torch.from_numpy(maps), 4)
    got = centre_targets(gather, torch.from_numpy(bank), edge=2, block_positions=7)
    expected = [int(np.argmin(((bank - maps[n, y, x]) ** 2).sum(1)))
                for n in range(2) for y in range(2, 6) for x in range(2, 6)]
    assert got.tolist() == expected


def test_mlp_layout_follows_c4():
    net = NeighbourhoodMLP(80 * 8, 16, 4, 10)
    linear = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(640, 16), (16, 16), (16, 16), (16, 10)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 3 and sum(isinstance(m, nn.Dropout) for m in net) == 3
    with pytest.raises(ConfigError, match="mlp_layers"):
        NeighbourhoodMLP(10, 4, 1, 3)


def test_split_is_seeded_and_disjoint():
    train, val = split_samples(100, 0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert torch.equal(split_samples(100, 0.1, seed=3)[1], val)
    with pytest.raises(ConfigError, match="split"):
        split_samples(3, 0.1, 0)


def test_training_learns_a_position_dependent_target_and_keeps_the_best_epoch():
    # The centre feature encodes the row; the neighbours do too, so the target is predictable.
    n, h, w, e = 6, 10, 10, 4
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1, 1).expand(n, h, w, e)
    maps = rows + 0.05 * torch.randn(n, h, w, e, generator=torch.Generator().manual_seed(0))
    bank = torch.arange(2, 8, dtype=torch.float32).view(-1, 1).expand(6, e).contiguous()  # one entry per row
    net, history = train_mlp(maps, bank, edge=2, radius=2, hidden=32, num_layers=3, dropout=0.0, epochs=12,
                             batch_size=32, lr=1e-2, lr_step=8, seed=0)
    assert len(history) == 12 and history[6]["lr"] == pytest.approx(1e-2) and history[7]["lr"] == pytest.approx(1e-3)
    best = min(h["val_loss"] for h in history)
    assert best < history[0]["val_loss"]
    # The returned net is the best-validation epoch's.
    gather = NeighbourhoodGather(maps, 2)
    targets = centre_targets(gather, bank, edge=2)
    val = split_samples(len(targets), 0.1, 0)[1]
    assert evaluate_mlp(net, gather, targets, val, 2, 64, torch.device("cpu"), None) == pytest.approx(best, rel=1e-5)
    q = neighbour_probabilities(net, maps[:1], radius=2, temperature=1.0).view(h, w, 6)
    assert torch.allclose(q.sum(-1), torch.ones(h, w))
    assert (q[2:8, 2:8].argmax(-1) == torch.arange(6).view(6, 1)).float().mean() == 1.0
