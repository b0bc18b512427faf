"""Gated nearest-entry scores (docs/methods.md C6), vectorised over all queries of a batch.

For a test patch φ with Euclidean distances d(φ, c) to every C_emb entry c, p(φ|c) = γ·exp(−γ·d). A gate
decides which entries may explain φ; the score is −log max over passing c of p(φ|c) = γ·d_min − log γ,
with d_min the distance to the nearest *passing* entry. The farthest entry always passes, so a patch
that no gate admits gets its largest distance.

- Neighbourhood gate: c passes if q_nb(parent(c)) > τ_nb, parent(c) = the C_dist entry nearest to c.
- Position gate: c passes if H_u(c) > τ_pos.

Intended semantics (default): gates are indexed by entry id, and d_min is a masked minimum, no sort
needed. ``official_compat`` reproduces what the official code computes (C6 "What the official code
actually computes", E1), on distances sorted by rank:

(i) only the first ⌈n/8⌉ loop indices of each gate loop are written (the other pymp workers' writes are
    lost; the mask starts all False): the position gate is tested for the ⌈|C_emb|/8⌉ nearest entries
    only, the neighbourhood loop runs over j < ⌈|C_dist|/8⌉ only;
(ii) the neighbourhood loop tests q_nb of the j-th *nearest* C_dist entry but marks the C_emb entries whose
    parent *id* is j, and that id-indexed mask is then applied to the *rank*-sorted probabilities (the mask
    of entry id k gates the k-th nearest entry).
"""

from __future__ import annotations

import math

import torch


def gated_distance(dist: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``[Q]``: distance to the nearest passing entry, or the largest distance when none passes."""
    masked = torch.where(gate, dist, torch.full_like(dist, math.inf)).amin(dim=1)
    return torch.minimum(masked, dist.amax(dim=1))


def score(distance: torch.Tensor, gamma: float) -> torch.Tensor:
    """−log(γ·exp(−γ·d)) = γ·d − log γ."""
    return gamma * distance - math.log(gamma)


def nb_gate(q_nb: torch.Tensor, parent: torch.Tensor, tau: float) -> torch.Tensor:
    """``[Q, |C_emb|]``: q_nb of each entry's parent above τ_nb."""
    return (q_nb > tau)[:, parent]


def first_passing(dist: torch.Tensor, rank_gate: torch.Tensor) -> torch.Tensor:
    """Sorted-rank evaluation: the distance at the first rank whose gate is set, the last rank always set."""
    sorted_dist, _ = dist.sort(dim=1)
    rank_gate = rank_gate.clone()
    rank_gate[:, -1] = True
    first = rank_gate.to(torch.uint8).argmax(dim=1, keepdim=True)  # argmax: the first maximal entry
    return sorted_dist.gather(1, first).squeeze(1)


def compat_pos_distance(dist: torch.Tensor, pos_pass: torch.Tensor) -> torch.Tensor:
    """Official position gate: only the ⌈M/8⌉ nearest entries are tested (C6 (i))."""
    order = dist.argsort(dim=1, stable=True)
    rank_gate = pos_pass.gather(1, order)
    rank_gate[:, math.ceil(dist.shape[1] / 8):] = False
    return first_passing(dist, rank_gate)


def compat_nb_distance(dist: torch.Tensor, q_nb: torch.Tensor, dist_to_cdist: torch.Tensor, parent: torch.Tensor,
                       tau: float) -> torch.Tensor:
    """Official neighbourhood gate (C6 (i) and (ii)).

    ``dist_to_cdist`` ``[Q, K]`` are φ's distances to the C_dist entries, which rank them for loop index j.
    """
    k = q_nb.shape[1]
    nearest_cdist = dist_to_cdist.argsort(dim=1, stable=True)  # j → id of φ's j-th nearest C_dist entry
    loop_pass = q_nb.gather(1, nearest_cdist) > tau  # [Q, K], indexed by j
    loop_pass[:, math.ceil(k / 8):] = False  # (i): only thread 0's chunk of j is written
    id_mask = loop_pass[:, parent]  # C_emb entry c is marked when j = parent(c) passed
    return first_passing(dist, id_mask)  # (ii): the id-indexed mask gates the rank-sorted distances


__all__ = ["compat_nb_distance", "compat_pos_distance", "first_passing", "gated_distance", "nb_gate", "score"]
