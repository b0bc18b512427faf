import numpy as np
import torch

from anomalyflow.pni.position import histogram, load_counts, position_counts, position_gate, save_counts


def slow_counts(ids: np.ndarray, n_entries: int, radius: int, valid: np.ndarray | None) -> np.ndarray:
    """C5 read literally: every (image, position) votes for its entry in every position of its clipped box."""
    n, h, w = ids.shape
    counts = np.zeros((h, w, n_entries), dtype=np.int64)
    for image in range(n):
        for y in range(h):
            for x in range(w):
                if valid is not None and not valid[y, x]:
                    continue
                counts[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1, ids[image, y, x]] += 1
    return counts.reshape(h * w, n_entries)


def test_hand_made_grid_has_the_known_counts():
    # One 5x5 image, all positions vote for entry 0 except the centre, which votes for entry 1; r = 1.
    ids = torch.zeros(1, 5, 5, dtype=torch.long)
    ids[0, 2, 2] = 1
    counts = position_counts(ids, 2, radius=1).view(5, 5, 2)
    # Entry 1 is seen in the 3x3 box around the centre only.
    expected_1 = torch.zeros(5, 5, dtype=torch.long)
    expected_1[1:4, 1:4] = 1
    assert torch.equal(counts[..., 1], expected_1)
    # Entry 0: a corner's clipped box holds 4 positions, an edge midpoint's 6, the centre's 9 minus itself.
    assert counts[0, 0, 0] == 4 and counts[0, 2, 0] == 6 and counts[2, 2, 0] == 8
    hist = histogram(counts.view(25, 2)).view(5, 5, 2)
    torch.testing.assert_close(hist[2, 2], torch.tensor([8 / 9, 1 / 9]))
    torch.testing.assert_close(hist.sum(-1), torch.ones(5, 5))


def test_vectorised_counts_equal_the_literal_definition():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, (3, 9, 11))
    valid = np.zeros((9, 11), dtype=bool)
    valid[2:-2, 2:-2] = True
    for radius, mask in ((4, None), (4, valid), (2, valid), (0, None)):
        got = position_counts(torch.from_numpy(ids), 7, radius, None if mask is None else torch.from_numpy(mask))
        np.testing.assert_array_equal(got.numpy(), slow_counts(ids, 7, radius, mask))


def test_edge_positions_receive_interior_votes():
    ids = torch.zeros(2, 8, 8, dtype=torch.long)
    valid = torch.zeros(8, 8, dtype=torch.bool)
    valid[2:-2, 2:-2] = True
    counts = position_counts(ids, 3, 4, valid)
    assert (counts.sum(1) > 0).all()  # r = 4 reaches every edge position from the interior


def test_gate_threshold_is_gamma_over_bank_size(tmp_path):
    counts = torch.tensor([[6, 3, 1, 0], [1, 1, 1, 1]])
    # tau = 0.5 / 4 = 0.125: 0.6, 0.3 pass; 0.1 and 0 do not; 0.25 everywhere passes.
    assert position_gate(counts, 0.5).tolist() == [[True, True, False, False], [True, True, True, True]]
    save_counts(tmp_path / "position.npz", grid=(1, 2), radius=4, no_edge=counts, with_edge=counts * 70000)
    with np.load(tmp_path / "position.npz") as data:
        assert data["no_edge"].dtype == np.uint16 and data["with_edge"].dtype == np.uint32
    loaded = load_counts(tmp_path / "position.npz", ("no_edge", "with_edge"))
    assert torch.equal(loaded["no_edge"], counts) and torch.equal(loaded["with_edge"], counts * 70000)
