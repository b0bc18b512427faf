import math

import pytest
import torch

from anomalyflow.pni.gates import (
    compat_nb_distance,
    compat_pos_distance,
    first_passing,
    gated_distance,
    nb_gate,
    score,
)


def test_gated_nearest_differs_from_plain_nearest():
    dist = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    gate = torch.tensor([[False, True, True, False]])
    assert gated_distance(dist, gate).item() == 2.0 and dist.min().item() == 1.0


def test_the_farthest_entry_always_passes():
    dist = torch.tensor([[3.0, 1.0, 5.0, 2.0]])
    assert gated_distance(dist, torch.zeros(1, 4, dtype=torch.bool)).item() == 5.0
    assert first_passing(dist, torch.zeros(1, 4, dtype=torch.bool)).item() == 5.0


def test_score_is_minus_log_of_the_exponential_likelihood():
    d = torch.tensor([0.0, 1.5])
    gamma = 0.99
    expected = -torch.log(gamma * torch.exp(-gamma * d))
    torch.testing.assert_close(score(d, gamma), expected)
    assert score(torch.tensor(0.0), gamma).item() == pytest.approx(-math.log(gamma))


def test_nb_gate_reads_the_parent_probability():
    q_nb = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    parent = torch.tensor([1, 0, 0, 1])
    assert nb_gate(q_nb, parent, 0.5).tolist() == [[False, True, True, False], [True, False, False, True]]


def test_masked_minimum_equals_the_first_passing_rank():
    g = torch.Generator().manual_seed(0)
    dist = torch.rand(50, 37, generator=g)
    gate = torch.rand(50, 37, generator=g) < 0.1
    rank_gate = gate.gather(1, dist.argsort(dim=1))  # the id-indexed gate, read in rank order
    torch.testing.assert_close(gated_distance(dist, gate), first_passing(dist, rank_gate))


def test_official_position_gate_tests_only_the_first_eighth_of_ranks():
    dist = torch.arange(1.0, 17.0).flip(0).unsqueeze(0)  # id 15 is nearest (d = 1), id 0 farthest (d = 16)
    ranks_to_ids = dist.argsort(dim=1)[0]
    passes = torch.zeros(1, 16, dtype=torch.bool)
    passes[0, ranks_to_ids[5]] = True  # only the 6th nearest entry passes the position gate
    assert gated_distance(dist, passes).item() == 6.0
    assert compat_pos_distance(dist, passes).item() == 16.0  # ⌈16/8⌉ = 2 ranks tested: falls to the farthest
    passes[0, ranks_to_ids[1]] = True  # a passing entry inside the tested ranks: the modes agree
    assert gated_distance(dist, passes).item() == compat_pos_distance(dist, passes).item() == 2.0


def test_official_nb_gate_mixes_ranks_and_ids():
    dist = torch.tensor([[4.0, 1.0, 3.0, 2.0]])  # rank order: id 1, id 3, id 2, id 0
    parent = torch.tensor([0, 0, 1, 1])
    q_nb = torch.tensor([[0.1, 0.9]])  # only C_dist id 1 is likely
    to_cdist = torch.tensor([[5.0, 1.0]])  # φ's nearest C_dist entry is id 1
    intended = gated_distance(dist, nb_gate(q_nb, parent, 0.5))
    official = compat_nb_distance(dist, q_nb, to_cdist, parent, 0.5)
    # Intended: ids 2 and 3 (parent 1) pass, the nearer is id 3 at 2.0. Official: loop j = 0 tests the nearest
    # C_dist entry (id 1, passes) and marks the C_emb ids whose parent is 0 (ids 0, 1) ; that id mask then gates
    # ranks 0 and 1, so the nearest entry overall (1.0) is taken.
    assert intended.item() == 2.0 and official.item() == 1.0


def test_official_and_intended_agree_where_the_bugs_cannot_matter():
    g = torch.Generator().manual_seed(1)
    dist = torch.rand(200, 40, generator=g)
    # A single C_dist entry: the rank/id mix-up cannot change anything and the loop has only j = 0.
    q_nb = torch.rand(200, 1, generator=g) * 0.05
    parent = torch.zeros(40, dtype=torch.long)
    to_cdist = torch.rand(200, 1, generator=g)
    torch.testing.assert_close(compat_nb_distance(dist, q_nb, to_cdist, parent, 0.025),
                               gated_distance(dist, nb_gate(q_nb, parent, 0.025)))
    # The nearest entry passes the position gate: both modes stop at rank 0.
    passes = torch.rand(200, 40, generator=g) < 0.3
    passes.scatter_(1, dist.argmin(dim=1, keepdim=True), True)
    torch.testing.assert_close(compat_pos_distance(dist, passes), gated_distance(dist, passes))
    torch.testing.assert_close(gated_distance(dist, passes), dist.amin(dim=1))


def literal_scores(dist, to_cdist, q_nb, parent, pos_pass, tau_nb, gamma, compat):
    """C6 read line by line, one query at a time: sorted probabilities times a 0/1 mask, −log of the maximum."""
    m, k = dist.shape[1], q_nb.shape[1]
    nb_out, pos_out = [], []
    for q in range(dist.shape[0]):
        ids = dist[q].argsort(stable=True)
        p = gamma * torch.exp(-gamma * dist[q][ids])
        nb_mask, pos_mask = torch.zeros(m), torch.zeros(m)
        if compat:
            nearest_cdist = to_cdist[q].argsort(stable=True)
            for j in range(k):
                if j < math.ceil(k / 8) and q_nb[q, nearest_cdist[j]] > tau_nb:
                    nb_mask[parent == j] = 1  # marks C_emb *ids* ...
            for j in range(m):
                if j < math.ceil(m / 8):
                    pos_mask[j] = float(pos_pass[q, ids[j]])
        else:
            nb_mask = (q_nb[q, parent[ids]] > tau_nb).float()
            pos_mask = pos_pass[q, ids].float()
        nb_mask[-1] = pos_mask[-1] = 1  # the farthest entry always passes
        nb_out.append(-torch.log((p * nb_mask).max()))  # ... and multiplies them with rank-sorted p
        pos_out.append(-torch.log((p * pos_mask).max()))
    return torch.stack(nb_out), torch.stack(pos_out)


@pytest.mark.parametrize("compat", [False, True])
def test_vectorised_gates_equal_the_literal_reading(compat):
    g = torch.Generator().manual_seed(2)
    q, m, k, gamma = 30, 40, 17, 0.99
    dist = torch.rand(q, m, generator=g, dtype=torch.float64) * 3
    to_cdist = torch.rand(q, k, generator=g, dtype=torch.float64)
    q_nb = torch.softmax(torch.randn(q, k, generator=g, dtype=torch.float64) * 2, dim=1)
    parent = torch.randint(0, k, (m,), generator=g)
    pos_pass = torch.rand(q, m, generator=g) < 0.3
    tau = 0.5 / m
    nb_ref, pos_ref = literal_scores(dist, to_cdist, q_nb, parent, pos_pass, tau, gamma, compat)
    if compat:
        nb = compat_nb_distance(dist, q_nb, to_cdist, parent, tau)
        pos = compat_pos_distance(dist, pos_pass)
    else:
        nb = gated_distance(dist, nb_gate(q_nb, parent, tau))
        pos = gated_distance(dist, pos_pass)
    torch.testing.assert_close(score(nb, gamma), nb_ref)
    torch.testing.assert_close(score(pos, gamma), pos_ref)
