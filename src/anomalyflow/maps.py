"""Anomaly-map geometry on batches: resize, Gaussian blur, padding. All torch, any device.

The blur reproduces ``scipy.ndimage.gaussian_filter(map, sigma)`` (``mode='reflect'``, i.e. symmetric
edge padding, ``truncate=4.0``) on a whole batch at once, so scoring never loops over images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[B, h, w]`` maps (align_corners False, as torchvision/cv2 resize)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def gaussian_kernel(sigma: float, truncate: float = 4.0, dtype=torch.float32, device=None) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _symmetric_index(length: int, pad: int, device) -> torch.Tensor:
    """Indices of a 1-D axis padded by ``pad`` on both sides with scipy's 'reflect' (d c b a | a b c d)."""
    positions = torch.arange(-pad, length + pad, device=device)
    period = 2 * length
    wrapped = torch.remainder(positions, period)
    return torch.where(wrapped >= length, period - 1 - wrapped, wrapped)


def gaussian_blur(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian filter of ``[B, H, W]`` maps; ``sigma`` ≤ 0 returns the maps unchanged."""
    if sigma <= 0:
        return maps
    kernel = gaussian_kernel(sigma, truncate, maps.dtype, maps.device)
    pad = kernel.numel() // 2
    b, h, w = maps.shape
    x = maps.index_select(1, _symmetric_index(h, pad, maps.device))
    x = F.conv2d(x.unsqueeze(1), kernel.view(1, 1, -1, 1)).squeeze(1)
    x = x.index_select(2, _symmetric_index(w, pad, maps.device))
    x = F.conv2d(x.unsqueeze(1), kernel.view(1, 1, 1, -1)).squeeze(1)
    return x.reshape(b, h, w)


def pad_constant(maps: torch.Tensor, pad: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``[B, h, w]`` maps by ``pad`` pixels per side (EfficientAD's 4-pixel zero padding, A6)."""
    if pad <= 0:
        return maps
    return F.pad(maps, (pad, pad, pad, pad), mode="constant", value=value)


def pad_replicate(maps: torch.Tensor, pad: int) -> torch.Tensor:
    """Edge-replicate padding of ``[B, h, w]`` maps (PNI's map border, C6)."""
    if pad <= 0:
        return maps
    return F.pad(maps.unsqueeze(1), (pad, pad, pad, pad), mode="replicate").squeeze(1)


def blur_radius(sigma: float, truncate: float = 4.0) -> int:
    return int(truncate * sigma + 0.5) if sigma > 0 else 0


def is_finite(maps: torch.Tensor) -> bool:
    return bool(torch.isfinite(maps).all())


__all__ = ["blur_radius", "gaussian_blur", "gaussian_kernel", "is_finite", "pad_constant", "pad_replicate", "resize"]
