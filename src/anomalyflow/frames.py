"""Where a method's maps lie in their images: the ``frame`` of a ``maps.npz`` (outputs.py), in pixels.

A ``maps.npz`` holds maps ``[N, h, w]`` that cover the fraction ``frame`` = (top, left, height, width) of
each original image (``(0, 0, 1, 1)``: all of it; PNI's centre crop: less). Evaluation crops the ground
truth to that box; the official-layout writer (official_maps.py) places the maps in it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from anomalyflow.errors import DataError
from anomalyflow.outputs import read_maps

__all__ = ["frame_box", "maps_of_images"]


def frame_box(shape: tuple[int, int], frame) -> tuple[int, int, int, int]:
    """The pixel box ``(top, left, bottom, right)`` that ``frame`` covers in an image of ``shape`` (H, W)."""
    height, width = shape
    top, left, h, w = frame
    return (round(top * height), round(left * width), round((top + h) * height), round((left + w) * width))


def maps_of_images(path: str | os.PathLike, images: Iterable[str]
                   ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The float32 maps ``[len(images), h, w]`` of ``images`` (paths, in that order) from the ``maps.npz`` at
    ``path``, and its frame. Raises :class:`DataError` naming the first image without a map."""
    maps, paths, frame = read_maps(path)
    position = {p: i for i, p in enumerate(paths)}
    images = list(images)
    missing = [p for p in images if p not in position]
    if missing:
        raise DataError(f"{path}: no anomaly map for test image {missing[0]} ({len(missing)} missing)")
    return maps[np.asarray([position[p] for p in images], dtype=np.int64)], frame
