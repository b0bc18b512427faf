"""Locally aware patch features (PatchCore §3.1; PNI C2).

For each chosen backbone layer, every position's p×p neighbourhood (zero padding p//2) is unfolded;
deeper layers' unfolded maps are resized bilinearly, one kernel element at a time, to the grid of
the first layer; each layer's C·p² vector is reduced to ``layer_dim`` by 1-D adaptive average pooling
(channel-major order, so with layer_dim = C this is a p×p mean per channel); the layers are
concatenated and pooled once more to ``embed_dim``. The result is one E-dimensional vector per
position of the first layer's grid (stride 8 for layer2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from anomalyflow.nets.backbones import LayerExtractor, build_backbone


class PatchFeatures(nn.Module):
    """Backbone + locally aware aggregation: images ``[B,3,H,W]`` → features ``[B, h, w, E]``."""

    def __init__(
        self,
        backbone: str = "wide_resnet50_2",
        layers: Sequence[str] = ("layer2", "layer3"),
        *,
        weights: str | None = "none",
        patch_size: int = 3,
        layer_dim: int | None = None,
        embed_dim: int = 1024,
    ):
        super().__init__()
        self.extractor = LayerExtractor(build_backbone(backbone, weights), layers)
        self.patch_size = patch_size
        self.layer_dim = layer_dim or embed_dim
        self.embed_dim = embed_dim
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PatchFeatures:
        # Frozen feature extractor: batch-norm statistics must never update.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.extractor(images)
        return aggregate(maps, self.patch_size, self.layer_dim, self.embed_dim)


def aggregate(maps: Sequence[torch.Tensor], patch_size: int, layer_dim: int, embed_dim: int) -> torch.Tensor:
    """PatchCore's aggregation of layer maps ``[B,C_l,h_l,w_l]`` into ``[B, h_0, w_0, embed_dim]``."""
    reference = maps[0].shape[-2:]
    batch = maps[0].shape[0]
    pooled = []
    for layer_map in maps:
        patches = unfold_patches(layer_map, patch_size)  # [B, C, p, p, h, w]
        if patches.shape[-2:] != reference:
            b, c, p, q, h, w = patches.shape
            patches = F.interpolate(patches.reshape(b * c * p * q, 1, h, w), size=reference,
                                    mode="bilinear", align_corners=False)
            patches = patches.reshape(b, c, p, q, *reference)
        # [B·h·w, 1, C·p·p], channel-major, as PatchCore's MeanMapper flattens it.
        channels = layer_map.shape[1]
        vectors = patches.permute(0, 4, 5, 1, 2, 3).reshape(-1, 1, channels * patch_size * patch_size)
        pooled.append(F.adaptive_avg_pool1d(vectors, layer_dim))  # [B·h·w, 1, layer_dim]
    stacked = torch.cat(pooled, dim=2)  # [B·h·w, 1, L·layer_dim]
    features = F.adaptive_avg_pool1d(stacked, embed_dim).squeeze(1)
    return features.reshape(batch, *reference, embed_dim)


def unfold_patches(layer_map: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[B,C,h,w]`` → ``[B,C,p,p,h,w]``: each position's p×p neighbourhood, zero padded."""
    b, c, h, w = layer_map.shape
    unfolded = F.unfold(layer_map, kernel_size=patch_size, padding=patch_size // 2, stride=1)
    return unfolded.reshape(b, c, patch_size, patch_size, h, w)
