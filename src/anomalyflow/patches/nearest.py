"""Exact Euclidean distances between patch features and a small bank, as chunked matmuls on the device.

PNI's banks hold a few thousand entries (|C_emb| ≈ 6.5k, |C_dist| = 2048), so every test patch's
distances to every entry fit in memory chunk by chunk, and the gates of C6 need all of them anyway.
The official code runs these searches with faiss on the CPU (k = |C_emb|, beyond the GPU's k ≤ 2048);
here they are ``‖x‖² − 2x·c + ‖c‖²`` on whatever device the features are on. The files on disk stay
faiss flat indexes (:class:`~anomalyflow.patches.memory.MemoryBank`), as in C3.
"""

from __future__ import annotations

import torch

# Elements of one [rows, M] distance block: 2^25 float32 = 128 MiB.
DEFAULT_BLOCK = 1 << 25


def distances(queries: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances ``[Q, M]`` (float32) between ``[Q, E]`` queries and a ``[M, E]`` bank."""
    x = queries.float()
    c = bank.float()
    c_sq = c.pow(2).sum(1) if bank_sq is None else bank_sq
    squared = x.pow(2).sum(1, keepdim=True) - 2.0 * (x @ c.T) + c_sq.unsqueeze(0)
    return squared.clamp_min_(0.0).sqrt_()


def block_rows(bank_size: int, block: int = DEFAULT_BLOCK) -> int:
    """Query rows per chunk so that one distance block stays under ``block`` elements."""
    return max(1, block // max(1, bank_size))


@torch.no_grad()
def nearest(queries: torch.Tensor, bank: torch.Tensor, *, block: int = DEFAULT_BLOCK) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
    """Distance and index of the nearest bank entry for each query: ``[Q]`` float32 and ``[Q]`` int64.

    Queries may live on the CPU (e.g. all training features); each chunk moves to the bank's device and
    the results come back on that device. Ties go to the lowest index (``argmin``).
    """
    bank_sq = bank.float().pow(2).sum(1)
    rows = block_rows(bank.shape[0], block)
    dist_out = torch.empty(queries.shape[0], dtype=torch.float32, device=bank.device)
    index_out = torch.empty(queries.shape[0], dtype=torch.long, device=bank.device)
    for begin in range(0, queries.shape[0], rows):
        chunk = queries[begin:begin + rows].to(bank.device, non_blocking=True)
        d = distances(chunk, bank, bank_sq)
        dist_out[begin:begin + rows], index_out[begin:begin + rows] = d.min(dim=1)
    return dist_out, index_out


@torch.no_grad()
def k_nearest(queries: torch.Tensor, bank: torch.Tensor, k: int, *, block: int = DEFAULT_BLOCK
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of the ``k`` nearest bank entries, ``[Q, k]`` each, nearest first, on the bank's
    device; ``k = 1`` is :func:`nearest` (ties to the lowest index)."""
    if k == 1:
        dist, index = nearest(queries, bank, block=block)
        return dist[:, None], index[:, None]
    bank_sq = bank.float().pow(2).sum(1)
    rows = block_rows(bank.shape[0], block)
    parts = [distances(queries[begin:begin + rows].to(bank.device, non_blocking=True), bank, bank_sq)
             .topk(k, dim=1, largest=False) for begin in range(0, queries.shape[0], rows)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


__all__ = ["DEFAULT_BLOCK", "block_rows", "distances", "k_nearest", "nearest"]
