"""Map frames: which part of an image an anomaly map covers (the geometry between image, mask and map).

A method's map covers a *frame* of the original image: ``(top, left, height, width)`` as fractions of
the image's height and width. Methods that resize the whole image to a square (PatchCore, EfficientAD,
PUAD) cover ``(0, 0, 1, 1)``, stretched like the image; PNI resizes the shorter side and cuts a
square centre crop, so which part it covers depends on each image's aspect ratio. The frame is
therefore a property of a (model, image size) pair: every model class has
``map_frame(height, width) -> Frame``, ``maps.npz`` stores one frame per map, and every consumer —
evaluation (masks are cut with their image's frame), ensembles (members' maps are cropped to the
first member's frame), ``anomalyflow predict``'s overlays and the report's map grid — places each
map with its own image's frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from anomalyflow.errors import ConfigError

if TYPE_CHECKING:
    import torch

# torch is imported inside the two functions that crop maps: outputs.py (and so the report's figure
# jobs, which must start in about a second) imports this module for its frames alone.

Frame = tuple[float, float, float, float]
FULL_FRAME: Frame = (0.0, 0.0, 1.0, 1.0)


def frames_for_sizes(model, sizes: Iterable[tuple[int, int]]) -> np.ndarray:
    """Frames ``[N, 4]`` (float64 fractions) of ``model``'s maps for images of ``(height, width)`` ``sizes``."""
    cache: dict[tuple[int, int], Frame] = {}
    rows = []
    for height, width in sizes:
        key = (int(height), int(width))
        if key not in cache:
            cache[key] = tuple(float(v) for v in model.map_frame(*key))
        rows.append(cache[key])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 4)


def map_frames(model, paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """Frames ``[N, 4]`` of ``model``'s maps of the images at ``paths`` (sizes from the file headers)."""
    from anomalyflow.data.images import image_size

    return frames_for_sizes(model, ((height, width) for width, height in map(image_size, paths)))


def as_frames(frames, count: int) -> np.ndarray:
    """``frames`` as ``[count, 4]`` float64: one frame ``[4]`` (older ``maps.npz`` files) is repeated."""
    array = np.asarray(frames, dtype=np.float64)
    if array.shape == (4,):
        return np.tile(array, (count, 1))
    if array.shape != (count, 4):
        raise ValueError(f"frames must be [4] or [{count}, 4], got {array.shape}")
    return array


def pixel_box(frame: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """``(y0, x0, y1, x1)``: the pixels ``[y0:y1, x0:x1]`` of a ``height × width`` image that ``frame`` covers."""
    top, left, h, w = (float(v) for v in frame)
    return round(top * height), round(left * width), round((top + h) * height), round((left + w) * width)


def crop_to_frame(maps: torch.Tensor, frame: Sequence[float], target: Sequence[float]) -> torch.Tensor:
    """The part of ``maps`` ``[B, h, w]`` (covering ``frame`` of their images) that covers ``target``, at ``[B, h, w]``.

    Raises :class:`ConfigError` if ``target`` does not lie inside ``frame``.
    """
    from anomalyflow.maps import resize

    if tuple(frame) == tuple(target):
        return maps
    top, left, height, width = frame
    t_top, t_left, t_height, t_width = target
    eps = 1e-9
    if t_top < top - eps or t_left < left - eps or t_top + t_height > top + height + eps \
            or t_left + t_width > left + width + eps:
        raise ConfigError(f"an ensemble member's maps cover {tuple(frame)} of the image, which does not contain the "
                          f"first member's {tuple(target)}; list the member with the smallest crop first")
    h, w = maps.shape[-2:]
    y0 = round((t_top - top) / height * h)
    x0 = round((t_left - left) / width * w)
    y1 = round((t_top + t_height - top) / height * h)
    x1 = round((t_left + t_width - left) / width * w)
    return resize(maps[:, y0:y1, x0:x1], (h, w))


def crop_to_frames(maps: torch.Tensor, frames: np.ndarray, targets: np.ndarray,
                   grid: tuple[int, int]) -> torch.Tensor:
    """Per image: the part of ``maps[i]`` (covering ``frames[i]``) that covers ``targets[i]``, resized to ``grid``.

    ``maps`` ``[N, h, w]``; ``frames``, ``targets`` ``[N, 4]``; returns ``[N, *grid]``. Images are
    processed in groups of equal (frame, target), so a category of a few image sizes costs a few
    batched crops. Raises :class:`ConfigError` where a target does not lie inside its frame.
    """
    import torch

    from anomalyflow.maps import resize

    frames, targets = as_frames(frames, len(maps)), as_frames(targets, len(maps))
    pairs, group = np.unique(np.concatenate([frames, targets], axis=1), axis=0, return_inverse=True)
    group = group.reshape(-1)
    if len(pairs) == 1:
        return resize(crop_to_frame(maps, pairs[0][:4], pairs[0][4:]), grid)
    out = maps.new_empty((len(maps), *grid))
    for index, pair in enumerate(pairs):
        rows = torch.from_numpy(np.flatnonzero(group == index)).to(maps.device)
        out[rows] = resize(crop_to_frame(maps[rows], pair[:4], pair[4:]), grid)
    return out


__all__ = ["FULL_FRAME", "Frame", "as_frames", "crop_to_frame", "crop_to_frames", "frames_for_sizes", "map_frames",
           "pixel_box"]
