"""EfficientAD's patch description network (PDN): the teacher and the student (docs/methods.md A2).

A PDN is four (small) or six (medium) plain convolutions with two 2×2 average poolings, no batch
norm: total stride 4 and a 33×33 receptive field, so every output vector describes one 33-px patch.

- ``padding=True`` (used only for teacher distillation, A3) keeps the listed paddings: a 256² input
  gives 64×64, the grid of the distillation target Ψ on a 512² input.
- ``padding=False`` (anomaly detection, both official codes): every padding is 0 and a 256² input
  gives 56×56 (256→253→126→123→61→59→56). Padding holds no weights, so one state dict serves both.
- Teacher: 384 output channels. Student: 768, where channels 0–383 are the ST head (predicts the
  teacher) and 384–767 the STAE head (predicts the autoencoder).

State-dict keys follow the official PUAD code (P, ``puad/networks.py``): ``conv1``…``conv4`` (S) or
``conv1``…``conv6`` (M), so P's ``teacher.pt``/``student.pt`` load with ``load_state_dict``. The
official EfficientAD code (N) builds an ``nn.Sequential`` whose keys are layer indices (``0.weight``,
``3.weight`` …); :func:`sequential_to_named` maps those onto these names.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from anomalyflow.errors import ConfigError

SIZES = ("s", "m")


class PDN(nn.Module):
    """A PDN of size ``"s"`` or ``"m"``: images ``[B,3,H,W]`` → features ``[B,out_channels,h,w]``.

    Layers (k = kernel, p = padding with ``padding=True``; all p are 0 without):

    - S: conv 3→128 k4 p3, ReLU, avgpool 2 p1, conv 128→256 k4 p3, ReLU, avgpool 2 p1,
      conv 256→256 k3 p1, ReLU, conv 256→out k4 (linear).
    - M: conv 3→256 k4 p3, ReLU, avgpool 2 p1, conv 256→512 k4 p3, ReLU, avgpool 2 p1,
      conv 512→512 k1, ReLU, conv 512→512 k3 p1, ReLU, conv 512→out k4, ReLU, conv out→out k1 (linear).
    """

    def __init__(self, size: str = "s", out_channels: int = 384, padding: bool = False):
        super().__init__()
        if size not in SIZES:
            raise ConfigError(f"size: {size!r} is not a PDN size; use 's' or 'm'")
        self.size = size
        self.out_channels = out_channels
        self.padding = bool(padding)
        pad = 1 if padding else 0
        width = 128 if size == "s" else 256
        self.conv1 = nn.Conv2d(3, width, kernel_size=4, padding=3 * pad)
        self.conv2 = nn.Conv2d(width, 2 * width, kernel_size=4, padding=3 * pad)
        if size == "s":
            self.conv3 = nn.Conv2d(256, 256, kernel_size=3, padding=pad)
            self.conv4 = nn.Conv2d(256, out_channels, kernel_size=4)
        else:
            self.conv3 = nn.Conv2d(512, 512, kernel_size=1)
            self.conv4 = nn.Conv2d(512, 512, kernel_size=3, padding=pad)
            self.conv5 = nn.Conv2d(512, out_channels, kernel_size=4)
            self.conv6 = nn.Conv2d(out_channels, out_channels, kernel_size=1)
        # Poolings hold no weights; they are modules (as in P) so the printed network reads like A2.
        self.avgpool1 = nn.AvgPool2d(kernel_size=2, stride=2, padding=pad)
        self.avgpool2 = nn.AvgPool2d(kernel_size=2, stride=2, padding=pad)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """Every layer but the last convolution (its input): ``forward(x) == head(trunk(x))``."""
        # In-place ReLUs: no extra 128×253² buffer per image (a convolution's output is not needed by its backward).
        x = self.avgpool1(F.relu(self.conv1(images), inplace=True))
        x = self.avgpool2(F.relu(self.conv2(x), inplace=True))
        x = F.relu(self.conv3(x), inplace=True)
        if self.size == "s":
            return x
        x = F.relu(self.conv4(x), inplace=True)
        return F.relu(self.conv5(x), inplace=True)

    def head(self, x: torch.Tensor, channels: slice | None = None) -> torch.Tensor:
        """The last convolution, optionally for a slice of its output channels only (``forward(x)[:, channels]``
        at that slice's share of the cost: training needs only the ST or the STAE half of the student per input)."""
        last = self.conv4 if self.size == "s" else self.conv6
        if channels is None:
            return last(x)
        return F.conv2d(x, last.weight[channels], last.bias[channels])


def pdn_small(out_channels: int = 384, padding: bool = False) -> PDN:
    """PDN-S (teacher 2.69 M parameters with 384 outputs; student 4.27 M with 768)."""
    return PDN("s", out_channels, padding)


def pdn_medium(out_channels: int = 384, padding: bool = False) -> PDN:
    """PDN-M (teacher 8.03 M parameters with 384 outputs; student 11.6 M with 768)."""
    return PDN("m", out_channels, padding)


def build_pdn(size: str, out_channels: int = 384, padding: bool = False) -> PDN:
    """``pdn_small`` or ``pdn_medium`` by name (``"s"``/``"m"``; ``"small"``/``"medium"`` as N spells them)."""
    return PDN(normalize_size(size), out_channels, padding)


def normalize_size(size: str) -> str:
    """``s``/``small`` → ``s``, ``m``/``medium`` → ``m``; anything else is a config error."""
    name = str(size).strip().lower()
    aliases = {"s": "s", "small": "s", "m": "m", "medium": "m"}
    if name not in aliases:
        raise ConfigError(f"size: {size!r} is not an EfficientAD size; use 's' or 'm'")
    return aliases[name]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_names(module: nn.Module) -> list[str]:
    """Names of the module's convolutions in forward order (the order N's ``nn.Sequential`` lists them)."""
    return [name for name, child in module.named_modules() if isinstance(child, nn.Conv2d)]


def sequential_to_named(state: Mapping[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Map an ``nn.Sequential`` state dict (keys ``<index>.weight``/``<index>.bias``, N's layout) onto
    ``module``'s named convolutions, in order. Raises ``ValueError`` when counts or shapes differ.

    N's sequential indices skip the ReLU/pool/upsample entries (PDN-S: 0, 3, 6, 8), so the i-th
    parameterised index is the i-th convolution of ``module`` in forward order.
    """
    indices = sorted({int(key.split(".", 1)[0]) for key in state})
    names = conv_names(module)
    if len(indices) != len(names):
        raise ValueError(f"{len(indices)} parameterised layers in the file, {len(names)} convolutions expected")
    target = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for index, name in zip(indices, names, strict=True):
        for kind in ("weight", "bias"):
            key = f"{index}.{kind}"
            if key not in state:
                raise ValueError(f"key {key!r} missing")
            if tuple(state[key].shape) != tuple(target[f"{name}.{kind}"].shape):
                raise ValueError(f"{key} has shape {tuple(state[key].shape)}, {name}.{kind} needs "
                                 f"{tuple(target[f'{name}.{kind}'].shape)}")
            mapped[f"{name}.{kind}"] = state[key]
    return mapped


def is_sequential_state(state: Mapping[str, torch.Tensor]) -> bool:
    """True when every key starts with a layer index (an ``nn.Sequential`` state dict, N's format)."""
    return bool(state) and all(key.split(".", 1)[0].isdigit() for key in state)


__all__ = ["PDN", "build_pdn", "conv_names", "count_parameters", "is_sequential_state", "normalize_size",
           "pdn_medium", "pdn_small", "sequential_to_named"]
