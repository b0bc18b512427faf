"""Position histograms H_u(c) (docs/methods.md C5) and the position gate of C6.

For every train image and grid position u, the nearest bank entry c of the feature at u casts one vote
into every position u′ of the (2r+1)² box around u (r = 4, clipped at the grid border). H_u is the vote
count at u normalised to sum 1. Two versions: **without edge** (votes from interior positions, bank
C_emb) and **with edge** (votes from all positions, bank C_emb_edge). Edge positions of the no-edge
version still receive the votes of interior positions within r.

Since "u′ in the box around u" ⇔ "u in the box around u′", the histogram is a box sum of the per-position
counts: one ``bincount`` over all (position, entry) pairs, then a summed-area table, so nothing loops over
images or positions.

Storage: the integer vote counts, dense ``[h·w, |C|]`` (uint16, or uint32 when a count exceeds 65535) in a
compressed npz (:func:`save_counts`). Counts are exact and most entries are zero, which zlib squeezes well;
H is ``counts / counts.sum(1)``. The gate H_u(c) > γ/|C| is evaluated on the counts in float64.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from anomalyflow.atomic import save_npz
from anomalyflow.errors import DataError


@torch.no_grad()
def position_counts(nearest_ids: torch.Tensor, n_entries: int, radius: int,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """Vote counts ``[h·w, n_entries]`` (int64) from nearest-entry ids ``[N, h, w]``.

    ``valid`` (bool ``[h, w]``) selects the voting positions (the interior for the no-edge version);
    every position, valid or not, receives the votes of the valid positions within ``radius``.
    """
    n, h, w = nearest_ids.shape
    positions = torch.arange(h * w, device=nearest_ids.device).view(1, h, w).expand(n, h, w)
    ids = nearest_ids
    if valid is not None:
        positions = positions[:, valid]
        ids = ids[:, valid]
    keys = positions.reshape(-1) * n_entries + ids.reshape(-1)
    own = torch.bincount(keys, minlength=h * w * n_entries).view(h, w, n_entries)
    # Summed-area table with a leading zero row and column: box sums by four lookups.
    table = torch.zeros(h + 1, w + 1, n_entries, dtype=torch.long, device=own.device)
    table[1:, 1:] = own.cumsum(0).cumsum(1)
    rows = torch.arange(h, device=own.device)
    cols = torch.arange(w, device=own.device)
    y0, y1 = (rows - radius).clamp_min(0), (rows + radius + 1).clamp_max(h)
    x0, x1 = (cols - radius).clamp_min(0), (cols + radius + 1).clamp_max(w)
    box = (table[y1][:, x1] - table[y0][:, x1] - table[y1][:, x0] + table[y0][:, x0])
    return box.reshape(h * w, n_entries)


def histogram(counts: torch.Tensor) -> torch.Tensor:
    """H_u(c) as float32 ``[P, |C|]``: each position's counts normalised to sum 1 (0 where none)."""
    counts = counts.double()
    total = counts.sum(1, keepdim=True)
    return torch.where(total > 0, counts / total.clamp_min(1), 0.0).float()


def position_gate(counts: torch.Tensor, gamma: float) -> torch.Tensor:
    """Bool ``[P, |C|]``: H_u(c) > τ_pos = γ/|C| (C6; ``softmax_coor_gamma`` 0.5)."""
    counts = counts.double()
    return counts / counts.sum(1, keepdim=True).clamp_min(1) > gamma / counts.shape[1]


def compact(counts: torch.Tensor) -> np.ndarray:
    """The counts as the smallest unsigned dtype that holds them."""
    array = counts.cpu().numpy()
    return array.astype(np.uint16 if array.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32)


def save_counts(path: str | os.PathLike, *, grid: tuple[int, int], radius: int, **counts: torch.Tensor) -> None:
    """``position.npz``: one ``[h·w, |C|]`` count array per version (e.g. ``no_edge``, ``with_edge``)."""
    save_npz(path, grid=np.asarray(grid, dtype=np.int64), radius=np.asarray(radius, dtype=np.int64),
             **{name: compact(value) for name, value in counts.items()})


def load_counts(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: torch.from_numpy(data[name].astype(np.int64)) for name in names}
    except FileNotFoundError:
        raise DataError(f"{path}: position histograms not found; run the PNI memory stage first") from None
    except (KeyError, ValueError, OSError) as error:
        raise DataError(f"{path}: not a PNI position file ({error})") from None


__all__ = ["compact", "histogram", "load_counts", "position_counts", "position_gate", "save_counts"]
