"""Test-image anomaly maps in the layout that MVTec's own evaluation scripts read.

MVTec AD (evaluation code v1.0) and MVTec LOCO AD (v2.0) ship an ``evaluate_experiment.py`` that reads one
real-valued ``.tiff`` per test image, at the size of that image, from
``<anomaly_maps_dir>/<category>/test/<defect_type>/<image_id>.tiff``. :func:`write_official_maps` writes a
method's ``maps.npz`` (outputs.py) as such a folder for one category:

- **Size.** Each map is resized bilinearly (align_corners False, as everywhere in anomalyflow) to the part
  of its image that its frame covers (:mod:`anomalyflow.frames`), at the image's own resolution. A map that
  covers less than the whole image (PNI's centre crop) is continued outside its frame by repeating its edge
  values, as PNI pads its own maps (``pad_replicate``); the evaluators score every pixel of the image.
- **Ties.** Long runs of one value within a map (at least 1/1000 of its pixels) are spread over the next
  float32 values with :mod:`anomalyflow.ties` (order-preserving over the whole category, shifts of a few
  units in the last place), because the LOCO script stops on maps where one value covers ~1/49 of all
  pixels (ties.py says why).
- **Format.** One uncompressed float32 grayscale TIFF per image (``tifffile.imwrite``): the evaluators'
  requirements install tifffile without imagecodecs (so no floating-point predictor), and plain zlib saved
  only 27% of a 1600x1100 map for 1.6 s instead of 3 ms of writing (measured here).
- **Names.** ``test/<defect_type>/<stem of the image>.tiff``, the image's own folder and file name; two test
  images that would share a name stop with a :class:`DataError`.

The folder is written atomically (all maps or none).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from anomalyflow.atomic import atomic_path
from anomalyflow.data.table import read_samples, split_rows
from anomalyflow.errors import DataError
from anomalyflow.evaluate import maps_of_test_images
from anomalyflow.frames import pixel_box
from anomalyflow.logs import get_logger
from anomalyflow.maps import resize
from anomalyflow.ties import TieStats, break_ties, tie_room

log = get_logger(__name__)

__all__ = ["full_size_maps", "official_map_names", "write_official_maps"]


def official_map_names(test: pd.DataFrame) -> list[str]:
    """``test/<defect_type>/<stem>.tiff`` for each row of a category's test split, in row order.

    Raises :class:`DataError` when two test images would get the same name.
    """
    names = [f"test/{defect}/{Path(path).stem}.tiff" for defect, path in zip(test["defect_type"], test["path"],
                                                                              strict=True)]
    first: dict[str, str] = {}
    for name, path in zip(names, test["path"], strict=True):
        if name in first:
            raise DataError(f"{path}: test images {first[name]} and {path} would both be written as {name}; the "
                            "official evaluators' layout needs one file name per image in each defect folder")
        first[name] = path
    return names


def full_size_maps(maps: torch.Tensor, frame, size: tuple[int, int]) -> torch.Tensor:
    """Maps ``[B, h, w]`` covering ``frame`` (top, left, height, width fractions) of images of ``size`` = (H, W)
    → maps ``[B, H, W]``.

    Bilinear resize to the frame's pixel box (:func:`anomalyflow.frames.pixel_box`), edge values repeated
    outside it. Same dtype and device as ``maps``. Raises :class:`DataError` if the frame covers no pixel.
    """
    top, left, bottom, right = pixel_box(frame, *size)
    if bottom <= top or right <= left:
        raise DataError(f"the map's frame {tuple(float(v) for v in frame)} covers no pixel of a "
                        f"{size[0]}x{size[1]} image")
    inside = resize(maps, (bottom - top, right - left))
    pads = (left, size[1] - right, top, size[0] - bottom)
    if not any(pads):
        return inside
    return F.pad(inside.unsqueeze(1), pads, mode="replicate").squeeze(1)


def write_official_maps(samples_path: str | os.PathLike, maps_path: str | os.PathLike,
                        out_dir: str | os.PathLike, *, batch_size: int = 8) -> TieStats:
    """Write the test maps of one category and method as ``out_dir/test/<defect_type>/<stem>.tiff``.

    ``samples_path``: the category's ``samples.csv``; ``maps_path``: the method's ``maps.npz``. Each map is
    float32 ``[H, W]`` at its image's size (read from the image header), long runs of one value broken
    (module doc). Maps are
    made ``batch_size`` at a time, three times over (two passes find the room for the ties, ties.py), so
    memory stays at a few batches of full-size maps. Returns what the tie-breaking did. Raises
    :class:`DataError` for a missing map or image, or two images with one file name.
    """
    import tifffile

    from anomalyflow.data.images import image_size

    test = split_rows(read_samples(samples_path), "test")
    if test.empty:
        raise DataError(f"{samples_path}: the category has no test images")
    names = official_map_names(test)
    maps, frames = maps_of_test_images(maps_path, test)
    # (H, W) from the header's (width, height), with the map's frame: the maps of one group are placed alike
    # (a dataset category usually has one image size, so one group).
    groups = [(*image_size(path)[::-1], *map(float, frame)) for path, frame in zip(test["path"], frames, strict=True)]

    def batches() -> Iterator[tuple[list[int], np.ndarray]]:
        for group in dict.fromkeys(groups):
            rows = [i for i, g in enumerate(groups) if g == group]
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                yield chunk, full_size_maps(torch.from_numpy(maps[chunk]), group[2:], group[:2]).numpy()

    room = tie_room(lambda: (batch for _, batch in batches()))
    stats = TieStats()
    with atomic_path(out_dir, directory=True) as tmp:
        for chunk, batch in batches():
            for i, values in zip(chunk, break_ties(batch, room, stats), strict=True):
                target = tmp / names[i]
                target.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(target, values, photometric="minisblack", metadata=None)
    log.info("%d maps written to %s; ties: %s", len(names), out_dir, stats.summary())
    if not stats.loco_safe():
        log.warning("%s: one value may still cover more than 1/98 of all pixels (ties float32 cannot break "
                    "without reordering pixels); the MVTec LOCO evaluator may stop on these maps", out_dir)
    return stats

