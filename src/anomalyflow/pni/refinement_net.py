"""PNI's pixel-wise refinement network and its loss (docs/methods.md C9).

Two DenseNet-161 encoders: encoder 1 takes the image, encoder 2 the anomaly map repeated to three
channels. Their stems (conv0, norm0, relu0, pool0: 96 channels at stride 4) are averaged ½/½ and passed
through encoder 1's dense blocks 1–4 (with their transitions), norm5 and a ReLU: 2208 channels at stride
32. Encoder 2 contributes only its stem, so only its stem is built. Decoder: 1×1 conv 2208→768, then
5× [bilinear ×2 (align_corners True), 1×1 conv halving the channels, ReLU, 3×3 conv, ReLU] (768→24), and a
1×1 conv to one channel. The output is a residual: refined = map + net(image, map).

The official code uses timm's DenseNet-161 with ImageNet weights; here it is torchvision's
``densenet161`` (weights ``none``, ``imagenet`` or a state-dict path). The last 1×1 conv starts at zero, so
an untrained refiner returns the map unchanged (a choice: the official initialisation is timm's default).

Loss: the mean over the batch of ½·MSE(refined, target) + ¼·MSE(∂x) + ¼·MSE(∂y), with forward
differences on replicate-padded maps (the last column's/row's difference is zero).
"""

from __future__ import annotations

import copy
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from anomalyflow.errors import ConfigError
from anomalyflow.nets.backbones import load_state_dict

STRIDE = 32
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def build_densenet161(weights: str | os.PathLike | None = "none", *, init_seed: int = 0) -> nn.Module:
    """torchvision's DenseNet-161; random init is seeded without touching the global RNG (as build_backbone)."""
    import torchvision  # imported here: ~2 s per process (see data/transforms.py)

    spec = "none" if weights is None else str(weights)
    if spec == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return torchvision.models.densenet161(weights=None)
    if spec == "imagenet":
        return torchvision.models.densenet161(weights="IMAGENET1K_V1")
    model = torchvision.models.densenet161(weights=None)
    # The published checkpoint file names dense-layer parts "norm.1"; the modules are "norm1" (as torchvision fixes).
    state = {_OLD_KEY.sub(r"\1\2", k): v for k, v in load_state_dict(spec, "densenet161").items()}
    model.load_state_dict(state)
    return model


def _stem(features: nn.Module) -> nn.Sequential:
    return nn.Sequential(features.conv0, features.norm0, features.relu0, features.pool0)


class RefinementNet(nn.Module):
    """``forward(image [B,3,S,S], amap [B,1,S,S]) -> residual [B,1,S,S]``; S a multiple of 32.

    ``init_seed`` seeds every random initialisation (the decoder's, and the DenseNet's under ``weights: none``)
    from its own generator state, so two trainings with one config start from the same weights whatever the
    process drew before.
    """

    def __init__(self, weights: str | os.PathLike | None = "none", *, init_seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self._build(weights, init_seed)

    def _build(self, weights: str | os.PathLike | None, init_seed: int) -> None:
        features = build_densenet161(weights, init_seed=init_seed).features
        self.image_stem = _stem(features)
        # Encoder 2 starts from the same weights (both are ImageNet DenseNet-161s in C9).
        self.map_stem = copy.deepcopy(self.image_stem)
        self.blocks = nn.Sequential(*[getattr(features, name) for name in (
            "denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "transition3",
            "denseblock4", "norm5")])
        channels = features.norm5.num_features  # 2208
        layers: list[nn.Module] = [nn.Conv2d(channels, 768, 1)]
        width = 768
        for _ in range(5):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                       nn.Conv2d(width, width // 2, 1), nn.ReLU(inplace=True),
                       nn.Conv2d(width // 2, width // 2, 3, padding=1), nn.ReLU(inplace=True)]
            width //= 2
        self.decoder = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, amap: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        if size[0] % STRIDE or size[1] % STRIDE:
            raise ConfigError(f"refine: refine_size must be a multiple of {STRIDE}, got {tuple(size)}")
        x = 0.5 * self.image_stem(image) + 0.5 * self.map_stem(amap.expand(-1, 3, -1, -1))
        x = F.relu(self.blocks(x))
        return self.head(self.decoder(x))


def forward_differences(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """∂x and ∂y of ``[B, 1, H, W]`` maps: forward differences after one replicate-padded column/row."""
    padded = F.pad(maps, (0, 1, 0, 1), mode="replicate")
    return padded[..., :-1, 1:] - maps, padded[..., 1:, :-1] - maps


def refinement_loss(refined: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ½·MSE + ¼·MSE(∂x) + ¼·MSE(∂y) between ``[B, 1, H, W]`` maps (C9)."""
    dx, dy = forward_differences(refined)
    tx, ty = forward_differences(target)

    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).square().flatten(1).mean(1)

    return (0.5 * mse(refined, target) + 0.25 * mse(dx, tx) + 0.25 * mse(dy, ty)).mean()


__all__ = ["RefinementNet", "build_densenet161", "forward_differences", "refinement_loss"]
