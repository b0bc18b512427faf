"""A stand-in for ImageNet in the offline demo: varied, seeded images of random clutter.

EfficientAD needs "natural" images three times: the teacher target's channel statistics, the teacher
distillation, and the student's ImageNet penalty. The demo has no ImageNet, and using the demo
categories' own images would let the penalty see their test set. These images share nothing with
the categories: random gradients, noise textures and overlapping shapes in random colours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from anomalyflow.atomic import atomic_path
from anomalyflow.errors import ConfigError

FOLDER = "images"


def planned_clutter_files(n_images: int = 64, seed: int = 0, image_size: int = 256) -> list[str]:
    """The relative paths :func:`generate_clutter` writes (known without drawing).

    Takes :func:`generate_clutter`'s keyword arguments (a teacher's ``synthetic:`` block), so that the
    workflow can pass the block to both; only ``n_images`` changes the paths, and a key neither takes is
    a ``TypeError`` rather than silently ignored.
    """
    return [f"{FOLDER}/{i:04d}.png" for i in range(n_images)]


def generate_clutter(out_dir: str | os.PathLike, n_images: int = 64, seed: int = 0, image_size: int = 256) -> list[str]:
    """Write ``n_images`` clutter images of ``image_size``² to ``<out_dir>/images/``; return their paths."""
    if n_images < 1:
        raise ConfigError(f"n_images must be at least 1, got {n_images}")
    if image_size < 16:
        raise ConfigError(f"image_size must be at least 16, got {image_size}")
    written = []
    for index, relative in enumerate(planned_clutter_files(n_images)):
        # One stream per image: changing n_images leaves the other images as they were.
        rng = np.random.default_rng([seed, index])
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Image.fromarray(draw_clutter(rng, image_size)).save(tmp, format="PNG")
        written.append(str(path))
    return written


def draw_clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``[size, size, 3]`` uint8 image: a textured gradient with 6–20 shapes on it."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    image = rng.uniform(0, 1, 3) * (1 - ramp) + rng.uniform(0, 1, 3) * ramp
    image = image + _texture(rng, size)[..., None] * rng.uniform(0.05, 0.25)
    for _ in range(int(rng.integers(6, 21))):
        alpha = _shape(rng, x, y)
        colour = rng.uniform(0, 1, 3) * (1 + 0.3 * _texture(rng, size)[..., None])
        image = image * (1 - alpha[..., None]) + colour * alpha[..., None]
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-mean noise at a random scale (upsampled coarse noise), roughly in [-1, 1]."""
    cells = int(rng.integers(2, max(3, size // 4)))
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    upsampled = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))
    return upsampled / (np.abs(upsampled).max() + 1e-6)


def _shape(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Soft coverage in [0, 1] of a random ellipse, rectangle or stroke."""
    cy, cx = rng.uniform(0, 1, 2)
    kind = rng.integers(3)
    softness = 0.004 + rng.uniform(0, 0.01)
    if kind == 0:
        ry, rx = rng.uniform(0.03, 0.25, 2)
        distance = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2) - 1.0
        distance = distance * min(ry, rx)
    elif kind == 1:
        hy, hx = rng.uniform(0.03, 0.2, 2)
        theta = rng.uniform(0, np.pi)
        u = np.cos(theta) * (x - cx) + np.sin(theta) * (y - cy)
        v = -np.sin(theta) * (x - cx) + np.cos(theta) * (y - cy)
        distance = np.maximum(np.abs(u) - hx, np.abs(v) - hy)
    else:
        theta = rng.uniform(0, np.pi)
        width = rng.uniform(0.005, 0.03)
        distance = np.abs(-np.sin(theta) * (x - cx) + np.cos(theta) * (y - cy)) - width
    return np.clip(0.5 - distance / softness, 0.0, 1.0)
