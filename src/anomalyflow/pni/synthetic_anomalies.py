"""Synthetic anomalies on training normals, with exact masks, for the refinement network (docs/methods.md C9).

The PNI paper trains its refiner on synthetic anomaly images, but the official repository has no
generator (E4), so this one is written here. Each sample takes one training normal and adds one defect:

- ``cutpaste``: a random rectangle copied from another training normal (another place of it) and pasted
  at a random place, as CutPaste does; the mask is the rectangle, even where the pasted pixels happen to
  look alike (the refiner learns what the PNI map shows there);
- ``stain``: a blob with a noisy outline (an ellipse perturbed by smoothed noise) blended with a random
  colour at a random opacity;
- ``scratch``: a thin random polyline, dark or bright.

Every pixel that changes is inside the mask (the tests check it). Images are ``[N, 3, H, W]`` floats in
[0, 1] at the geometry the model sees (after PNI's resize and crop, before normalisation), so masks and
maps align without resampling. Each sample's randomness comes from ``(seed, index)`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from anomalyflow.errors import ConfigError
from anomalyflow.maps import gaussian_blur

KINDS = ("cutpaste", "stain", "scratch")


@dataclass
class Synthetic:
    """Generated images ``[S, 3, H, W]`` (float32, [0, 1]), masks ``[S, H, W]`` (bool) and what was done."""

    images: torch.Tensor
    masks: torch.Tensor
    records: list[dict] = field(default_factory=list)


def synthesize(normals: torch.Tensor, count: int, *, seed: int = 0, kinds: tuple[str, ...] = KINDS,
               scale: tuple[float, float] = (0.08, 0.3)) -> Synthetic:
    """``count`` anomalous versions of ``normals`` ``[N, 3, H, W]``; sample i starts from normal i mod N."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"refine: synthetic kinds must be a non-empty subset of {', '.join(KINDS)}, not {kinds}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ConfigError(f"refine: synthetic scale must satisfy 0 < min <= max <= 1, not {scale}")
    n, _, h, w = normals.shape
    images = torch.empty(count, *normals.shape[1:], dtype=torch.float32)
    masks = torch.zeros(count, h, w, dtype=torch.bool)
    records = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        base = i % n
        kind = str(kinds[int(rng.integers(len(kinds)))])
        image = normals[base].float().cpu().clone()
        if kind == "cutpaste":
            record = _cut_paste(image, masks[i], normals, base, rng, scale)
        elif kind == "stain":
            record = _stain(image, masks[i], rng, scale)
        else:
            record = _scratch(image, masks[i], rng)
        images[i] = image
        records.append({"kind": kind, "base": base, **record})
    return Synthetic(images, masks, records)


def _size(rng: np.random.Generator, length: int, scale: tuple[float, float]) -> int:
    return max(2, min(length, round(rng.uniform(*scale) * length)))


def _cut_paste(image: torch.Tensor, mask: torch.Tensor, normals: torch.Tensor, base: int, rng: np.random.Generator,
               scale: tuple[float, float]) -> dict:
    n, _, h, w = normals.shape
    # Another normal when there is one; with a single normal, another place of the same image.
    donor = int((base + 1 + rng.integers(n - 1)) % n) if n > 1 else base
    ph, pw = _size(rng, h, scale), _size(rng, w, scale)
    sy, sx = int(rng.integers(h - ph + 1)), int(rng.integers(w - pw + 1))
    ty, tx = int(rng.integers(h - ph + 1)), int(rng.integers(w - pw + 1))
    image[:, ty:ty + ph, tx:tx + pw] = normals[donor, :, sy:sy + ph, sx:sx + pw].float().cpu()
    mask[ty:ty + ph, tx:tx + pw] = True
    return {"donor": donor, "source": (sy, sx, ph, pw), "target": (ty, tx, ph, pw)}


def _stain(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, scale: tuple[float, float]) -> dict:
    _, h, w = image.shape
    ry, rx = _size(rng, h, scale) / 2, _size(rng, w, scale) / 2
    cy, cx = rng.uniform(0, h - 1), rng.uniform(0, w - 1)
    noise = torch.from_numpy(rng.standard_normal((1, h, w)).astype(np.float32))
    noise = gaussian_blur(noise, max(1.0, min(ry, rx) / 3))[0]
    noise = noise / noise.abs().amax().clamp_min(1e-8)
    yy = (torch.arange(h, dtype=torch.float32).view(-1, 1) - cy) / ry
    xx = (torch.arange(w, dtype=torch.float32).view(1, -1) - cx) / rx
    blob = (yy.square() + xx.square() + 0.6 * noise) < 1.0
    blob[round(cy), round(cx)] = True  # never empty
    colour = torch.from_numpy(rng.uniform(0, 1, 3).astype(np.float32)).view(3, 1, 1)
    alpha = float(rng.uniform(0.5, 0.9))
    image.copy_(torch.where(blob, (1 - alpha) * image + alpha * colour, image))
    mask |= blob
    return {"centre": (cy, cx), "radii": (ry, rx), "alpha": alpha}


def _scratch(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator) -> dict:
    _, h, w = image.shape
    vertices = [(float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1))) for _ in range(int(rng.integers(2, 5)))]
    width = max(1, round(min(h, w) / 64 * rng.uniform(1, 2.5)))
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).line(vertices, fill=255, width=width, joint="curve")
    line = torch.from_numpy(np.asarray(canvas) > 0)
    line[round(vertices[0][1]), round(vertices[0][0])] = True  # never empty
    value = 0.05 if rng.random() < 0.5 else 0.95
    image.copy_(torch.where(line, torch.full_like(image, value), image))
    mask |= line
    return {"vertices": vertices, "width": width, "value": value}


__all__ = ["KINDS", "Synthetic", "synthesize"]
