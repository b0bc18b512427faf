"""Locally aware patch features (PatchCore §3.1; PNI C2).

For each chosen backbone layer, every position's p×p neighbourhood (zero padding p//2) is unfolded;
deeper layers' unfolded maps are resized bilinearly, one kernel element at a time, to the grid of
the first layer; each layer's C·p² vector is reduced to ``layer_dim`` by 1-D adaptive average pooling
(channel-major order, so with layer_dim = C this is a p×p mean per channel); the layers are
concatenated and pooled once more to ``embed_dim``. (That is the definition, as PatchCore computes it;
:func:`combine_layers` pools before it resizes, which gives the same numbers with p² times less work.)
The result is one E-dimensional vector per position of the first layer's grid (stride 8 for layer2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from anomalyflow.nets.backbones import Frozen, LayerExtractor, build_backbone


class PatchFeatures(Frozen):
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
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.extractor(images)
        return combine_layers(maps, self.patch_size, self.layer_dim, self.embed_dim)


def combine_layers(maps: Sequence[torch.Tensor], patch_size: int, layer_dim: int, embed_dim: int) -> torch.Tensor:
    """PatchCore's aggregation of layer maps ``[B,C_l,h_l,w_l]`` into ``[B, h_0, w_0, embed_dim]``."""
    reference = maps[0].shape[-2:]
    pooled = []
    for layer_map in maps:
        b, _, h, w = layer_map.shape
        # [B, C·p·p, h·w], channel-major as PatchCore's MeanMapper flattens it, pooled to layer_dim.
        unfolded = F.unfold(layer_map, kernel_size=patch_size, padding=patch_size // 2, stride=1)
        vectors = pool_channels(unfolded, layer_dim).reshape(b, layer_dim, h, w)
        if (h, w) != reference:
            # PatchCore resizes every unfolded element; pooling first gives the same numbers (both are
            # linear, over different axes) for p² times less interpolation.
            vectors = F.interpolate(vectors, size=reference, mode="bilinear", align_corners=False)
        pooled.append(vectors.flatten(2))
    features = pool_channels(torch.cat(pooled, dim=1), embed_dim)  # [B, E, h_0·w_0]
    return features.transpose(1, 2).contiguous().view(maps[0].shape[0], *reference, embed_dim)


def pool_channels(vectors: torch.Tensor, size: int) -> torch.Tensor:
    """1-D adaptive average pooling of ``[B, n, L]`` along ``n`` to ``size``: a plain mean of equal groups
    when ``size`` divides ``n`` (the usual case, without transposing the tensor twice)."""
    b, n, length = vectors.shape
    if n % size == 0:
        return vectors.view(b, size, n // size, length).mean(2)
    return F.adaptive_avg_pool1d(vectors.transpose(1, 2), size).transpose(1, 2)
