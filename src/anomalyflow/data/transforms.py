"""The image transforms the networks need, without importing torchvision.

Importing torchvision costs about 2 s per process (its ``ops`` module loads ``torch._dynamo``), and a
workflow run starts dozens of processes, most of which need only resize → tensor → normalise. These
are exact equivalents of ``torchvision.transforms`` on PIL images (``Resize`` on a PIL image is PIL's
own ``resize``, which antialiases); ``tests/test_transforms.py`` checks them bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Compose:
    def __init__(self, steps: Sequence[Callable]):
        self.steps = list(steps)

    def __call__(self, image):
        for step in self.steps:
            image = step(image)
        return image


class Resize:
    """Resize a PIL image to ``(height, width)`` with bilinear filtering (aspect ratio not kept)."""

    def __init__(self, size: int | tuple[int, int]):
        self.height, self.width = (size, size) if isinstance(size, int) else size

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.resize((self.width, self.height), Image.BILINEAR)


class CenterCrop:
    """Crop the centre ``(height, width)`` of a PIL image (torchvision's rounding of the offsets)."""

    def __init__(self, size: int | tuple[int, int]):
        self.height, self.width = (size, size) if isinstance(size, int) else size

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if self.width > width or self.height > height:
            raise ValueError(f"crop {self.height}x{self.width} larger than the image {height}x{width}")
        top = round((height - self.height) / 2.0)
        left = round((width - self.width) / 2.0)
        return image.crop((left, top, left + self.width, top + self.height))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """``[3, H, W]`` uint8 from an RGB PIL image."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """``[3, H, W]`` float32 in [0, 1] from an RGB PIL image."""
    return pil_to_tensor(image).float().div_(255)


class Normalize:
    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean) / self.std


def image_transform(size: int | tuple[int, int], *, normalize: bool = True) -> Compose:
    """PIL image → float tensor ``[3, H, W]`` at ``size``, ImageNet-normalised unless ``normalize=False``."""
    steps: list[Callable] = [Resize(size), to_tensor]
    if normalize:
        steps.append(Normalize())
    return Compose(steps)


def uint8_transform(size: int | tuple[int, int]) -> Compose:
    """PIL image → uint8 tensor ``[3, H, W]`` at ``size`` (compact storage of training sets)."""
    return Compose([Resize(size), pil_to_tensor])
