"""Pretrained CNN backbones from torchvision, truncated after the last layer a method needs.

Weights are ``none`` (random init, for tests and the offline demo), ``imagenet`` (torchvision's
IMAGENET1K_V1; the workflow downloads them once with its ``weights_download`` rule into
``resources/weights/<backbone>.pth`` and passes that file, :func:`anomalyflow.config.resolve_weights`) or a
path to a state dict. Nothing downloads unless a caller asks for ``imagenet`` without a cached file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from anomalyflow.errors import ConfigError, DataError

BACKBONES = (
    "wide_resnet50_2", "wide_resnet101_2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext101_32x8d", "densenet201", "densenet161",
)
# DenseNet has dense blocks where ResNets have layers; PNI takes features.denseblock2/3 for DN201 (C2).
_DENSENET_ALIASES = {f"layer{i}": f"denseblock{i}" for i in range(1, 5)}


class Frozen(nn.Module):
    """A feature extractor that never trains: :meth:`freeze` turns its parameters' gradients off, and it stays in
    eval mode whatever :meth:`train` is asked (its batch-norm statistics must never update)."""

    def freeze(self) -> Frozen:
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> Frozen:
        return super().train(False)


def build_backbone(name: str, weights: str | os.PathLike | None = "none", *, init_seed: int = 0) -> nn.Module:
    """A torchvision classification network with the requested weights, in eval mode.

    Random init (``weights="none"``) is drawn from ``init_seed`` without touching the global RNG, so the
    fitting job and every later scoring job build the very same network.
    """
    # torchvision is imported here, not at module level: it costs ~2 s per process (see data/transforms.py).
    import torchvision

    if name not in BACKBONES:
        raise ConfigError(f"backbone {name!r} is not supported; choose one of {', '.join(BACKBONES)}")
    builder = getattr(torchvision.models, name)
    spec = "none" if weights is None else str(weights)
    if spec == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = builder(weights=None)
    elif spec == "imagenet":
        model = builder(weights="IMAGENET1K_V1")
    else:
        model = builder(weights=None)
        model.load_state_dict(load_state_dict(spec, name))
    return model.eval()


def load_state_dict(path: str | os.PathLike, name: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"weights: {file} does not exist; use 'imagenet', 'none' or a path to a {name} state dict")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the same to the user
        raise DataError(f"{file}: not a readable torch state dict ({type(error).__name__}: {error})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def save_imagenet_weights(name: str, path: str | os.PathLike) -> None:
    """Download torchvision's IMAGENET1K_V1 weights for ``name`` and store the state dict at ``path``."""
    from anomalyflow.atomic import save_torch

    model = build_backbone(name, "imagenet")
    save_torch(path, model.state_dict())


class LayerExtractor(nn.Module):
    """Runs a backbone's layers in order and returns the requested intermediate outputs.

    The forward pass stops after the last requested layer (PNI and PatchCore need layer2/layer3 only,
    so the deeper half of the network is never computed).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]):
        super().__init__()
        self.layers = [self._canonical(model, layer) for layer in layers]
        chain = self._chain(model)
        names = [n for n, _ in chain]
        missing = [layer for layer in self.layers if layer not in names]
        if missing:
            raise ConfigError(f"layers: {missing} not in this backbone; available: {', '.join(names)}")
        last = max(names.index(layer) for layer in self.layers)
        self.stages = nn.ModuleDict(chain[: last + 1])

    @staticmethod
    def _canonical(model: nn.Module, layer: str) -> str:
        import torchvision

        if isinstance(model, torchvision.models.DenseNet):
            return _DENSENET_ALIASES.get(layer, layer)
        return layer

    @staticmethod
    def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
        import torchvision

        if isinstance(model, torchvision.models.DenseNet):
            return list(model.features.named_children())
        if isinstance(model, torchvision.models.ResNet):
            return [(n, m) for n, m in model.named_children() if n not in ("avgpool", "fc")]
        raise ConfigError(f"no layer chain known for {type(model).__name__}")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = {}
        x = images
        for name, stage in self.stages.items():
            x = stage(x)
            if name in self.layers:
                outputs[name] = x
        return [outputs[layer] for layer in self.layers]
