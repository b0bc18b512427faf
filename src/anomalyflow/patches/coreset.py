"""Greedy k-center coreset selection (PatchCore §3.2; PNI C3).

Each step adds the point farthest (L2) from the points selected so far. Distances are computed on
randomly projected features (Johnson–Lindenstrauss) to make each step cheap. Memory is linear in N:
the state is one vector of current nearest-selected distances, and each step is one chunked
matrix-vector product ``‖x‖² − 2x·c + ‖c‖²``, never an N×N matrix (the exact PatchCore sampler's
quadratic memory, patchcore-inspection #38).

On a CPU each step is bound by memory bandwidth (one pass over the projected points). ``storage="int8"``
rounds each projected point to int8 codes with its own scale and computes the dot products with exact
integer arithmetic (``torch._int_mm``), a quarter of the bytes per pass: the greedy then runs exactly on
the rounded points. The rounding (at most 1/254 of a point's largest coordinate) is small beside the
projection's own distortion (up to 90% at eps 0.9); bench/README.md records the selections' coverage.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from anomalyflow.errors import ConfigError


def random_projection(dim_in: int, dim_out: int, seed: int, device: torch.device,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A dense Gaussian JL projection ``[dim_in, dim_out]`` scaled to preserve expected norms."""
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(dim_in, dim_out, generator=generator, dtype=torch.float64) / math.sqrt(dim_out)
    return matrix.to(device=device, dtype=dtype)


@torch.no_grad()
def greedy_coreset(
    features: np.ndarray | torch.Tensor,
    n: int,
    *,
    projection_dim: int | None = 128,
    start: int | None = None,
    include_start: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk_size: int = 1 << 20,
    progress: bool = False,
    storage: str = "float32",
) -> np.ndarray:
    """Indices of ``n`` points chosen by greedy k-center, in selection order.

    ``features`` ``[N, D]``. ``projection_dim`` None or 0 (or ≥ D) uses the raw features. ``start`` is the
    first centre (default: drawn from ``seed``). With ``include_start`` (the textbook algorithm) the
    start is the first selected index; PNI/anomalib instead only seed the distances with it and do not
    select it (``include_start=False``). Ties go to the lowest index. The computation runs in the
    features' dtype (float32 unless given float64) on ``device``. ``storage`` ``"int8"`` stores the
    (projected) points as per-row int8 codes (see the module docstring); ``"auto"`` is int8 for projected
    points on the CPU, else float32 (on CUDA bandwidth is not the limit; raw features stay exact).
    """
    data = torch.as_tensor(features)
    if data.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(data.shape)}")
    total = data.shape[0]
    if not 1 <= n <= total:
        raise ConfigError(f"coreset size {n} must be between 1 and the number of features ({total})")
    device = torch.device(device)
    dtype = torch.float64 if data.dtype == torch.float64 else torch.float32
    rng = np.random.default_rng(seed)
    first = int(rng.integers(total)) if start is None else int(start)
    if not 0 <= first < total:
        raise ValueError(f"start index {first} out of range for {total} features")

    int8 = _storage(storage, device, bool(projection_dim) and projection_dim < data.shape[1]) == "int8"
    points = _project(data, projection_dim, seed, device, dtype, chunk_size)
    if int8:
        points = Int8Points(points, chunk_size)
    sq_norms = points.pow(2).sum(1) if isinstance(points, torch.Tensor) else points.sq_norms
    min_dist = torch.full((total,), math.inf, device=device, dtype=dtype)
    selected = np.empty(n, dtype=np.int64)
    count = 0
    centre = first
    if include_start:
        selected[0] = first
        count = 1
    for _ in tqdm(range(n), disable=not progress, desc="coreset", unit="pt", leave=False):
        _update(min_dist, points, sq_norms, centre, chunk_size)
        if count == n:
            break
        # argmax returns the first maximum: ties go to the lowest index.
        centre = int(torch.argmax(min_dist))
        selected[count] = centre
        count += 1
    return selected


def _storage(storage: str, device: torch.device, projected: bool) -> str:
    if storage not in ("float32", "int8", "auto"):
        raise ConfigError(f"coreset storage must be float32, int8 or auto, not {storage!r}")
    if storage == "auto":  # unprojected features keep the exact greedy
        return "int8" if projected and device.type == "cpu" else "float32"
    return storage


class Int8Points:
    """Projected points as int8 codes ``q`` and per-row scales ``s`` (x ≈ s·q), for :func:`_update`.

    Dot products between stored points are exact on the CPU: ``s_x·s_c·Σ q_x q_c`` with an int32 sum
    (``torch._int_mm``). Elsewhere (CUDA, where ``_int_mm`` wants padded shapes and the step is not
    bandwidth-bound, or a torch without it) the rounded points are kept dequantised and go through the
    float matvec: the same points, with float rounding.
    """

    def __init__(self, points: torch.Tensor, chunk_size: int):
        if points.shape[1] > 133_000:  # 127² · dim must fit the int32 sums
            raise ValueError(f"int8 coreset storage handles at most 133,000 dimensions, not {points.shape[1]}")
        self.scales = points.abs().amax(1).div_(127.0)
        self.scales[self.scales == 0] = 1.0  # an all-zero row stays all zero
        self.codes = torch.empty(points.shape, dtype=torch.int8, device=points.device)
        norms = torch.empty(points.shape[0], dtype=torch.int64, device=points.device)
        rows = max(1, chunk_size // max(1, points.shape[1]))
        for begin in range(0, points.shape[0], rows):
            part = slice(begin, begin + rows)
            self.codes[part] = torch.round(points[part] / self.scales[part, None]).to(torch.int8)
            norms[part] = self.codes[part].to(torch.int32).pow(2).sum(1)
        self.sq_norms = norms.to(points.dtype) * self.scales.pow(2)
        self.shape = points.shape
        self.rounded = None
        if not int8_matmul(points.device):
            self.rounded = self.codes.to(points.dtype).mul_(self.scales[:, None])
            self.codes = None

    def dots(self, centre: int, part: slice) -> torch.Tensor:
        """``x·c`` for the rows ``part`` and the stored point ``centre``."""
        if self.rounded is not None:
            return self.rounded[part] @ self.rounded[centre]
        raw = torch._int_mm(self.codes[part], self.codes[centre, :, None]).squeeze(1)
        return raw.to(self.scales.dtype).mul_(self.scales[part]).mul_(self.scales[centre])


def int8_matmul(device: torch.device) -> bool:
    """Whether exact int8 dot products (``torch._int_mm``) serve the coreset on ``device``."""
    return device.type == "cpu" and hasattr(torch, "_int_mm")


def _project(data: torch.Tensor, projection_dim: int | None, seed: int, device: torch.device,
             dtype: torch.dtype, chunk_size: int) -> torch.Tensor:
    dim = data.shape[1]
    if not projection_dim or projection_dim >= dim:
        return data.to(device=device, dtype=dtype)
    matrix = random_projection(dim, projection_dim, seed, device, dtype)
    out = torch.empty(data.shape[0], projection_dim, device=device, dtype=dtype)
    rows = max(1, chunk_size // dim)
    for begin in range(0, data.shape[0], rows):
        out[begin:begin + rows] = data[begin:begin + rows].to(device=device, dtype=dtype) @ matrix
    return out


def _update(min_dist: torch.Tensor, points: torch.Tensor | Int8Points, sq_norms: torch.Tensor, centre: int,
            chunk_size: int) -> None:
    """min_dist ← min(min_dist, ‖x − c‖), chunked so no temporary exceeds ``chunk_size`` elements.

    The only temporaries are distance vectors (the rows are views), so a chunk is ``chunk_size`` *rows*:
    one fused ``addmv`` (‖x‖² − 2x·c) over all points per step when N ≤ ``chunk_size``. Each step streams
    the projected points through memory once; on a CPU that bandwidth is the whole cost.
    """
    c_norm = sq_norms[centre]
    rows = max(1, min(points.shape[0], chunk_size))
    for begin in range(0, points.shape[0], rows):
        part = slice(begin, begin + rows)
        if isinstance(points, Int8Points):
            dist = points.dots(centre, part).mul_(-2.0).add_(sq_norms[part])
        else:
            dist = torch.addmv(sq_norms[part], points[part], points[centre], alpha=-2.0)
        dist.add_(c_norm).clamp_min_(0.0)
        torch.minimum(min_dist[part], dist, out=min_dist[part])
    # The centre itself must read exactly zero even where rounding left a tiny positive value.
    min_dist[centre] = 0.0


def coreset_size(total: int, fraction: float, minimum: int = 1) -> int:
    """⌊fraction·N⌋ points, at least ``minimum`` and at most N."""
    return int(min(total, max(minimum, math.floor(fraction * total))))
