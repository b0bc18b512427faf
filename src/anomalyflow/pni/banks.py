"""PNI's three memory banks (docs/methods.md C3): C_emb, C_dist and C_emb_edge.

- One greedy k-center run (PNI's variant: the random start only seeds the distances and is not selected,
  ``include_start=False``) over the **interior** train features, for max(⌊f·N_int⌋, ``dist_size``) picks.
  **C_emb** is its first ⌊f·N_int⌋ picks and **C_dist** its first ``dist_size`` picks, so whichever is
  smaller is a prefix of the other (C_dist ⊂ C_emb whenever |C_emb| ≥ |C_dist|, as in PNI).
- A separate run over **all** positions (edge included), ⌊f·N_all⌋ picks, gives **C_emb_edge**.

Distances during selection are computed on randomly projected features. PNI uses sklearn's sparse
projection with ``eps=0.9`` and ``n_components='auto'`` (≈ 330 dims for 655k points); here the projection is
the dense Gaussian one of :mod:`anomalyflow.patches.coreset`, and ``projection="auto"`` picks the same
Johnson–Lindenstrauss dimension. The selected entries keep their full, unprojected features.

Too few training features for the requested sizes is a :class:`ConfigError` naming the key, not a silent
clamp: a smaller C_dist changes the MLP's number of classes and the gate thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger
from anomalyflow.patches.coreset import greedy_coreset
from anomalyflow.pni.geometry import interior_mask

log = get_logger(__name__)


@dataclass
class Banks:
    """The three banks as ``[M, E]`` float32 tensors."""

    emb: torch.Tensor
    dist: torch.Tensor
    emb_edge: torch.Tensor


def jl_dimension(n_samples: int, eps: float = 0.9) -> int:
    """sklearn's ``johnson_lindenstrauss_min_dim``: 4·ln(n) / (eps²/2 − eps³/3)."""
    return int(4 * math.log(max(n_samples, 2)) / (eps**2 / 2 - eps**3 / 3))


def projection_dim(setting: int | str | None, n_samples: int, dim: int) -> int | None:
    """The projection dimension for greedy selection: ``auto`` (JL, eps 0.9), an int, or 0/None for none."""
    if setting in (None, 0, "none"):
        return None
    if setting == "auto":
        value = jl_dimension(n_samples)
    elif isinstance(setting, int) and setting > 0:
        value = setting
    else:
        raise ConfigError(f"pni: coreset_projection must be 'auto', 0 or a positive integer, not {setting!r}")
    return None if value >= dim else value


def bank_sizes(n_interior: int, n_all: int, fraction: float, dist_size: int) -> tuple[int, int, int]:
    """``(|C_emb|, |C_dist|, |C_emb_edge|)``; a ConfigError when the training set is too small."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"pni: coreset_fraction must be in (0, 1], not {fraction}")
    n_emb = math.floor(fraction * n_interior)
    n_edge = math.floor(fraction * n_all)
    if n_emb < 1:
        raise ConfigError(f"pni: coreset_fraction {fraction} of {n_interior} interior train features selects no "
                          "entry; raise coreset_fraction or add train images")
    if not 1 <= dist_size <= n_interior:
        raise ConfigError(f"pni: dist_coreset_size {dist_size} must be between 1 and the number of interior train "
                          f"features ({n_interior}); lower it or add train images")
    return n_emb, dist_size, n_edge


@torch.no_grad()
def select_banks(features: torch.Tensor, *, edge: int, fraction: float = 0.01, dist_size: int = 2048,
                 projection: int | str | None = "auto", storage: str = "auto", seed: int = 0,
                 device: torch.device | str = "cpu") -> Banks:
    """The three banks from train features ``[N, h, w, E]`` (any device; selection runs on ``device``)."""
    _, h, w, e = features.shape
    inner = interior_mask(h, w, edge, features.device)
    interior = features[:, inner].reshape(-1, e)  # [N·h_int·w_int, E], (image, row, column) order
    everything = features.reshape(-1, e)
    n_emb, n_dist, n_edge = bank_sizes(len(interior), len(everything), fraction, dist_size)
    picks = greedy_coreset(interior, max(n_emb, n_dist), projection_dim=projection_dim(projection, len(interior), e),
                           include_start=False, seed=seed, device=device, progress=True, storage=storage)
    picks = torch.from_numpy(picks).to(interior.device)
    # The edge run is independent of the interior one; a different seed gives it its own start.
    edge_picks = greedy_coreset(everything, n_edge, projection_dim=projection_dim(projection, len(everything), e),
                                include_start=False, seed=seed + 1, device=device, progress=True,
                                storage=storage)
    log.info("coresets: |C_emb| = %d, |C_dist| = %d of %d interior features; |C_emb_edge| = %d of %d", n_emb,
             n_dist, len(interior), n_edge, len(everything))
    device = torch.device(device)
    return Banks(
        emb=interior[picks[:n_emb]].float().to(device),
        dist=interior[picks[:n_dist]].float().to(device),
        emb_edge=everything[torch.from_numpy(edge_picks).to(everything.device)].float().to(device),
    )


__all__ = ["Banks", "bank_sizes", "jl_dimension", "projection_dim", "select_banks"]
