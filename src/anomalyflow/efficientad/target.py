"""The distillation target Ψ of the EfficientAD teacher (docs/methods.md A3).

Ψ is a frozen pretrained CNN (``wide_resnet101_2`` in both official codes) run on a 2× input (512²
for a 256² PDN): layer2 gives C₂ channels at stride 8 (512 × 64×64 for WRN-101), layer3 gives C₃ at
stride 16 (1024 × 32×32). Two variants, whose targets differ, so their teachers are not interchangeable:

- ``"p"`` (PUAD, the default): layer3 upsampled bilinearly (align_corners False) to layer2's grid,
  concatenated after layer2 (C₂+C₃ = 1536 channels) and reduced to 384 by 1-D adaptive average
  pooling over the channel axis (for 1536 → 384: the mean of each run of four channels). No 3×3
  neighbourhood aggregation.
- ``"n"`` (the EfficientAD code, PatchCore's extractor): every layer's 3×3 neighbourhood is unfolded
  (zero padding 1), layer3's unfolded maps are upsampled to layer2's grid, each layer's C·9 vector
  is pooled to 1024, the two are concatenated (2048) and pooled to 384 — exactly
  :func:`anomalyflow.patches.features.combine_layers` with patch 3, layer dim 1024, embed dim 384.

Output: ``[B, 384, H/8, W/8]``, i.e. ``[B, 384, 64, 64]`` for a 512² input, the grid of a padded PDN
on 256².
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from anomalyflow.errors import ConfigError
from anomalyflow.nets.backbones import Frozen, LayerExtractor, build_backbone
from anomalyflow.patches.features import combine_layers

VARIANTS = ("p", "n")


def check_variant(variant: str, key: str = "variant") -> str:
    name = str(variant).strip().lower()
    if name not in VARIANTS:
        raise ConfigError(f"{key}: {variant!r} is not an EfficientAD variant; use 'p' (PUAD) or 'n' (EfficientAD code)")
    return name


class TeacherTarget(Frozen):
    """Frozen Ψ: normalised images ``[B,3,2s,2s]`` → targets ``[B, out_channels, s/4, s/4]``.

    ``weights`` is ``"none"`` (random init; tests and the offline demo), ``"imagenet"`` (torchvision's
    IMAGENET1K_V1, what the paper uses) or a path to a state dict of ``backbone``. ``init_seed`` seeds
    the random initialisation (only matters for ``"none"``).
    """

    def __init__(self, variant: str = "p", backbone: str = "wide_resnet101_2",
                 weights: str | os.PathLike | None = "none", out_channels: int = 384, init_seed: int = 0):
        super().__init__()
        self.variant = check_variant(variant)
        self.backbone_name = backbone
        self.out_channels = out_channels
        # With weights "none" the backbone is a random network seeded by init_seed: statistics and
        # distillation (separate jobs) must see the same Ψ.
        model = build_backbone(backbone, weights, init_seed=init_seed)
        self.extractor = LayerExtractor(model, ["layer2", "layer3"])
        self.freeze()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        layer2, layer3 = self.extractor(images)
        if self.variant == "n":
            features = combine_layers([layer2, layer3], patch_size=3, layer_dim=1024, embed_dim=self.out_channels)
            return features.permute(0, 3, 1, 2).contiguous()
        b, _, h, w = layer2.shape
        upsampled = F.interpolate(layer3, size=(h, w), mode="bilinear", align_corners=False)
        stacked = torch.cat([layer2, upsampled], dim=1)  # [B, C2+C3, h, w]
        # Pool over channels: each position's C-vector is one row of a 1-D adaptive average pool.
        rows = stacked.permute(0, 2, 3, 1).reshape(b * h * w, 1, -1)
        pooled = F.adaptive_avg_pool1d(rows, self.out_channels)
        return pooled.reshape(b, h, w, self.out_channels).permute(0, 3, 1, 2).contiguous()


__all__ = ["VARIANTS", "TeacherTarget", "check_variant"]
