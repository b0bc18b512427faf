"""EfficientAD's autoencoder (docs/methods.md A4): a 1×1 bottleneck that must reconstruct the teacher's
features from a global code, so it captures the logical layout of a normal image.

Encoder: five convolutions k4 s2 p1 (3→32→32→64→64→64) with ReLU, then a linear convolution that
reduces the remaining ``image_size/32`` grid to a 64×1×1 code. Decoder: six stages of [bilinear
resize, conv 64→64 k4 s1 p2 (each adds one pixel), ReLU, dropout 0.2], a resize to the PDN's output
grid, conv k3 p1 + ReLU and a linear conv k3 p1 to ``out_channels``.

The intermediate sizes follow the official PUAD code (P), which derives them from the image size:
``s/64−1, s/32, s/16−1, s/8, s/4−1, s/2−1`` (3, 8, 15, 32, 63, 127 for 256, the constants of N), then
``s/4`` with a padded PDN or ``s/4−8`` without (64 or 56 for 256). Two extensions for other sizes,
neither changes anything at 256:

- the last encoder kernel is ``s/32`` (8 at 256) — P keeps 8, which fails for inputs below 256;
- every decoder size is at least 1, so small test images (64²) work.

Dropout: P and the paper use p=0.2 after each decoder stage; N's code has no dropout (``dropout=0``
reproduces N). State-dict keys are P's (``encoder.enconv1``… ``decoder.deconv8``); N's sequential
keys map with :func:`anomalyflow.nets.pdn.sequential_to_named`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anomalyflow.errors import ConfigError


def pdn_output_size(image_size: int, padding: bool = False) -> int:
    """The PDN's output side for a square input (A2): ``s/4`` padded, ``s/4 − 8`` unpadded when 4 divides s.

    Computed layer by layer (conv k4, pool 2, conv k4, pool 2, conv k3, conv k4; PDN-M's 1×1 convs
    change nothing), so sizes that 4 does not divide get the grid the PDN really produces.
    """
    pad = 1 if padding else 0

    def conv(n: int, k: int, p: int) -> int:
        return n + 2 * p - k + 1

    def pool(n: int) -> int:
        return (n + 2 * pad - 2) // 2 + 1

    n = pool(conv(image_size, 4, 3 * pad))
    n = pool(conv(n, 4, 3 * pad))
    return conv(conv(n, 3, pad), 4, 0)


def decoder_sizes(image_size: int, padding: bool = False) -> list[int]:
    """The seven resize targets of the decoder (P's formulas, floored at 1)."""
    s = image_size
    steps = [s // 64 - 1, s // 32, s // 16 - 1, s // 8, s // 4 - 1, s // 2 - 1]
    return [max(1, v) for v in steps] + [pdn_output_size(s, padding)]


class Encoder(nn.Module):
    def __init__(self, image_size: int = 256):
        super().__init__()
        self.enconv1 = nn.Conv2d(3, 32, kernel_size=4, stride=2, padding=1)
        self.enconv2 = nn.Conv2d(32, 32, kernel_size=4, stride=2, padding=1)
        self.enconv3 = nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1)
        self.enconv4 = nn.Conv2d(64, 64, kernel_size=4, stride=2, padding=1)
        self.enconv5 = nn.Conv2d(64, 64, kernel_size=4, stride=2, padding=1)
        # Each k4 s2 p1 conv halves the side (floor), so s/32 remains; this kernel makes it 1×1.
        self.enconv6 = nn.Conv2d(64, 64, kernel_size=image_size // 32)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for i in range(1, 6):
            x = F.relu(getattr(self, f"enconv{i}")(x))
        return self.enconv6(x)


class Decoder(nn.Module):
    def __init__(self, out_channels: int = 384, image_size: int = 256, padding: bool = False,
                 dropout: float = 0.2):
        super().__init__()
        self.sizes = decoder_sizes(image_size, padding)
        for i in range(1, 7):
            setattr(self, f"deconv{i}", nn.Conv2d(64, 64, kernel_size=4, stride=1, padding=2))
        self.deconv7 = nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1)
        self.deconv8 = nn.Conv2d(64, out_channels, kernel_size=3, stride=1, padding=1)
        # Six separate modules as in P (no parameters, so the state dict is unaffected either way).
        for i in range(1, 7):
            setattr(self, f"dropout{i}", nn.Dropout(p=dropout))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = code
        for i, size in enumerate(self.sizes[:6], start=1):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = getattr(self, f"dropout{i}")(F.relu(getattr(self, f"deconv{i}")(x)))
        x = F.interpolate(x, size=self.sizes[6], mode="bilinear", align_corners=False)
        x = F.relu(self.deconv7(x))
        return self.deconv8(x)


class Autoencoder(nn.Module):
    """Images ``[B,3,s,s]`` → ``[B,out_channels,g,g]`` with g the PDN's grid (56 for 256 unpadded)."""

    def __init__(self, out_channels: int = 384, image_size: int = 256, padding: bool = False,
                 dropout: float = 0.2):
        super().__init__()
        if image_size < 64 or pdn_output_size(image_size, padding) < 1:
            raise ConfigError(f"image_size: {image_size} is too small for EfficientAD; use at least 64")
        self.image_size = image_size
        self.encoder = Encoder(image_size)
        self.decoder = Decoder(out_channels, image_size, padding, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


__all__ = ["Autoencoder", "Decoder", "Encoder", "decoder_sizes", "pdn_output_size"]
