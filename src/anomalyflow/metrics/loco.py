"""MVTec LOCO AD evaluation: saturation areas, the sPRO curve and AUC-sPRO, and per-kind image AUROC.

Definitions of the official MVTec LOCO AD evaluation (Bergmann et al., IJCV 2022, and its
``mvtec_loco_ad_evaluation`` scripts; restated in docs/methods.md §D):

- Each ground-truth defect is its own "channel": one mask file ``ground_truth/<type>/<stem>/NNN.png``
  whose nonzero pixels carry the defect's ``pixel_value``. ``defects_config.json`` lists, per defect
  type, ``{"defect_name", "pixel_value", "saturation_threshold", "relative_saturation"}``.
- Saturation area of a channel: ``saturation_threshold × defect area`` if ``relative_saturation``,
  else ``saturation_threshold`` pixels (at the dataset's original resolution); never more than the
  defect's own area (the official loader takes the minimum, so a small defect saturates only when it
  is covered completely).
- sPRO at a threshold = mean over all defect channels of all images of
  min(TP area / saturation area, 1). Overlapping channels each count their own pixels.
- FPR at a threshold = false positives / pixels that are defect-free in *all* channels of their image,
  over all evaluated images (good and anomalous).
- AUC-sPRO at each FPR limit (0.01, 0.05, 0.1, 0.3, 1.0): trapezoid area up to the limit (curve
  interpolated at the limit), divided by the limit.
- Image AUROC is reported for logical anomalies vs all good test images, structural anomalies vs all
  good test images, and their mean.

Difference from the official script, on purpose: it approximates the sPRO curve at thresholds chosen
by adaptive binary refinement (and crashes on maps with large tied regions, EfficientAD issue #10).
Here the curve is EXACT at every distinct score, from one sort: the k-th pixel (in descending score
order) of a channel with saturation area s adds (min(k, s) − min(k−1, s)) / (s · #channels) to sPRO,
so summing over a score prefix gives exactly the mean of min(TP/s, 1). Values therefore agree with
the official ones up to the official approximation error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from anomalyflow.errors import DataError
from anomalyflow.metrics.arrays import (
    Array,
    ArrayLike,
    as_array,
    binary_masks,
    float_scores,
    like,
    to_numpy,
)
from anomalyflow.metrics.auroc import image_auroc
from anomalyflow.metrics.pro import area_to_limit, check_fpr_limit, image_stack_shape, overlap_curve

__all__ = ["auc_spro", "loco_image_aurocs", "saturation_areas", "spro_curve"]

LOCO_FPR_LIMITS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.3, 1.0)
_CONFIG_KEYS = ("defect_name", "pixel_value", "saturation_threshold", "relative_saturation")

# One defect channel of one image: its mask [H,W] and its saturation area in pixels.
Defect = tuple[ArrayLike, float]


# --------------------------------------------------------------------------------------------------
# saturation areas
# --------------------------------------------------------------------------------------------------

def saturation_areas(channel_masks: Sequence[ArrayLike], pixel_values: Sequence[int] | None,
                     defects_config: Sequence[Mapping[str, Any]] | str | os.PathLike,
                     area_scale: float = 1.0) -> np.ndarray:
    """Saturation area (pixels, float64) of each defect channel, as the official LOCO evaluation.

    ``channel_masks``: one mask per channel (nonzero = defect), at the resolution of the anomaly maps.
    ``pixel_values``: the ``pixel_value`` each channel's mask file carries; ``None`` reads it from the
    masks themselves (they must then be the original uint8 masks holding that value).
    ``defects_config``: the parsed ``defects_config.json`` list, or its path. ``area_scale``: (new
    resolution / original resolution)² when the masks were resized, e.g. (256/1024)²; it scales
    absolute thresholds, which the config gives in original-resolution pixels. Relative thresholds
    scale with the (resized) defect area by themselves. Every result is capped at the defect's area.
    """
    if not (math.isfinite(area_scale) and area_scale > 0):
        raise DataError(f"area_scale must be a positive number, got {area_scale}")
    by_value = _defects_by_value(defects_config)
    masks = [to_numpy(as_array(mask)) for mask in channel_masks]
    if pixel_values is None:
        pixel_values = [_pixel_value_of(mask, index) for index, mask in enumerate(masks)]
    if len(pixel_values) != len(masks):
        raise DataError(f"got {len(masks)} channel masks but {len(pixel_values)} pixel values")
    areas = np.empty(len(masks), dtype=np.float64)
    for index, (mask, value) in enumerate(zip(masks, pixel_values, strict=True)):
        config = by_value.get(int(value))
        if config is None:
            raise DataError(f"defect channel {index} has pixel value {int(value)}, which defects_config "
                            f"does not list (known: {sorted(by_value)})")
        area = float(_defect_area(mask, f"defect channel {index} (pixel value {int(value)}) has an empty mask; was it "
                                        "resized away? evaluate at a higher resolution"))
        threshold = float(config["saturation_threshold"])
        # Relative thresholds follow the (possibly resized) defect area; absolute ones are in pixels of
        # the original resolution, so they scale with the resize.
        saturation = threshold * area if config["relative_saturation"] else threshold * area_scale
        areas[index] = min(saturation, area)
    return areas


def _defect_area(mask: np.ndarray, empty: str) -> int:
    """A defect channel's area in pixels; ``empty`` is the :class:`DataError` message for an empty mask."""
    area = int(np.count_nonzero(mask))
    if area == 0:
        raise DataError(empty)
    return area


# --------------------------------------------------------------------------------------------------
# sPRO
# --------------------------------------------------------------------------------------------------

def spro_curve(maps: ArrayLike, defects: Sequence[Sequence[Defect]], *, fpr_limit: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The exact sPRO curve: (FPRs, sPROs) at every distinct score, descending, from (0, 0).

    ``maps``: float ``[N,H,W]``. ``defects``: per image, a list of ``(mask bool [H,W], saturation
    area)`` (an empty list for a good image). With ``fpr_limit`` the curve stops at the first point
    whose FPR reaches it. Returns float64 numpy arrays.
    """
    if fpr_limit is not None:
        fpr_limit = check_fpr_limit(fpr_limit)
    neg_scores, entry_scores, entry_ids, increments, n_neg = _spro_entries(maps, defects)
    return overlap_curve(neg_scores, entry_scores, entry_ids, increments, n_neg, fpr_limit)


def auc_spro(maps: ArrayLike, defects: Sequence[Sequence[Defect]],
             fpr_limits: Sequence[float] = LOCO_FPR_LIMITS) -> dict[float, float]:
    """AUC-sPRO at each FPR limit, normalised by the limit: ``{limit: value}``.

    One curve (up to the largest limit) serves all limits. Raises :class:`DataError` when there is no
    defect channel, a mask is empty or misshapen, a saturation area is not positive, or no pixel is
    defect-free; :class:`NumericalError` on NaN/inf in the maps.
    """
    limits = [check_fpr_limit(limit) for limit in fpr_limits]
    if not limits:
        raise DataError("auc_spro needs at least one FPR limit")
    fprs, spros = spro_curve(maps, defects, fpr_limit=max(limits))
    return {limit: area_to_limit(fprs, spros, limit) for limit in limits}


def _spro_entries(maps: ArrayLike, defects: Sequence[Sequence[Defect]]
                  ) -> tuple[Array, Array, Array, Callable[[Array], Array], int]:
    maps_a = float_scores(as_array(maps), "anomaly maps")
    n_images, height, width = image_stack_shape(tuple(maps_a.shape))
    if len(defects) != n_images:
        raise DataError(f"got anomaly maps for {n_images} image(s) but defect lists for {len(defects)}")
    # Every (pixel, channel) membership is one entry; a pixel in two overlapping channels counts in
    # both. Built per channel (flat pixel indices), so memory follows the defect area, not C·H·W.
    pixel_parts: list[np.ndarray] = []
    saturations: list[float] = []
    for image, image_defects in enumerate(defects):
        for channel, (mask, saturation) in enumerate(image_defects):
            mask_np = binary_masks(to_numpy(as_array(mask)), f"defect mask {channel} of image {image}")
            if mask_np.shape != (height, width):
                raise DataError(f"defect mask {channel} of image {image} has shape {mask_np.shape} but the "
                                f"anomaly maps are {height}x{width}; they must match pixel for pixel")
            area = _defect_area(mask_np, f"defect mask {channel} of image {image} is empty; sPRO needs every "
                                         "defect channel to have pixels (was it resized away?)")
            saturation = float(saturation)
            if not (math.isfinite(saturation) and saturation > 0):
                raise DataError(f"defect {channel} of image {image} has saturation area {saturation}; it "
                                "must be a positive number of pixels")
            pixel_parts.append(np.flatnonzero(mask_np) + image * height * width)
            # The official loader caps the saturation area at the defect's area.
            saturations.append(min(saturation, float(area)))
    if not pixel_parts:
        raise DataError(f"sPRO needs defect channels, but none of the {n_images} image(s) has one")
    pixel_of = np.concatenate(pixel_parts)
    channel_of = np.repeat(np.arange(len(pixel_parts), dtype=np.int64), [len(part) for part in pixel_parts])
    del pixel_parts
    # Negatives: pixels in no channel of their image.
    defect_free = np.ones(n_images * height * width, dtype=bool)
    defect_free[pixel_of] = False
    n_neg = int(np.count_nonzero(defect_free))
    if n_neg == 0:
        raise DataError("sPRO needs defect-free pixels to measure false positives, but every pixel lies "
                        "in a defect")
    scores = maps_a.reshape(-1)
    neg_scores = scores[like(defect_free, scores)]
    entry_scores = scores[like(pixel_of, scores)]
    entry_ids = like(channel_of + 1, scores)
    increments = _saturated_increments(like(np.asarray(saturations), scores), len(saturations))
    return neg_scores, entry_scores, entry_ids, increments, n_neg


def _saturated_increments(saturations: Array, n_channels: int) -> Callable[[Array], Array]:
    """What each entry adds to sPRO, given all kept entries' channel ids in descending score order.

    The r-th (0-based) entry of a channel with saturation area s adds clip(s − r, 0, 1) / (s · C): the
    first ⌊s⌋ pixels add 1/(s·C) each, the next one the fractional rest, later ones nothing, so a
    prefix of k pixels sums to min(k, s) / (s · C). Within a tie of scores the order is arbitrary, but
    the curve only exists at tie ends, where the sum is the same for every order. Dropping the
    lowest-scoring entries (fpr_limit) leaves the ranks of the others unchanged.
    """

    def increments(ids: Array) -> Array:
        # Rank of each entry within its channel: sort (channel, position) packed in one int64 so each
        # channel's positions come out ascending, then subtract the channel's start.
        if isinstance(ids, torch.Tensor):
            positions = torch.nonzero(ids).reshape(-1)
            channels = ids[positions] - 1
            packed = torch.sort((channels << 32) | positions).values
            counts = torch.bincount(channels, minlength=n_channels)
            arange = torch.arange(packed.shape[0], device=ids.device)
            out = torch.zeros(ids.shape[0], dtype=torch.float64, device=ids.device)
        else:
            positions = np.flatnonzero(ids)
            channels = ids[positions] - 1
            packed = np.sort((channels << 32) | positions)
            counts = np.bincount(channels, minlength=n_channels)
            arange = np.arange(packed.shape[0])
            out = np.zeros(ids.shape[0], dtype=np.float64)
        channel_sorted = packed >> 32
        rank = arange - (_cumsum_int(counts) - counts)[channel_sorted]
        saturation = saturations[channel_sorted]
        gain = (saturation - rank).clip(0.0, 1.0) / (saturation * n_channels)
        out[packed & 0xFFFFFFFF] = gain
        return out

    return increments


def _cumsum_int(x: Array) -> Array:
    return torch.cumsum(x, 0) if isinstance(x, torch.Tensor) else np.cumsum(x)


# --------------------------------------------------------------------------------------------------
# image AUROC per anomaly kind
# --------------------------------------------------------------------------------------------------

def loco_image_aurocs(labels: ArrayLike, kinds: Sequence[str] | np.ndarray, scores: ArrayLike
                      ) -> dict[str, float]:
    """Image AUROC of logical and of structural anomalies, each vs ALL good images, and their mean.

    ``labels`` 0/1 ``[N]``, ``kinds`` ``[N]`` from the sample table's ``anomaly_kind`` (``none`` or
    ``good`` for good images, ``logical`` / ``structural`` for anomalies), ``scores`` ``[N]``.
    Returns ``{"logical", "structural", "mean"}``. A kind with no image at all gives NaN (and so does
    the mean, which is the mean of the two as the LOCO paper reports it); any other problem raises.
    """
    labels_np = to_numpy(as_array(labels))
    kinds_np = np.asarray([str(kind) for kind in kinds])
    scores_a = as_array(scores)
    n = len(kinds_np)
    if labels_np.shape != (n,) or tuple(scores_a.shape) != (n,):
        raise DataError(f"labels {labels_np.shape}, kinds ({n},) and scores {tuple(scores_a.shape)} must "
                        "all be [N], one entry per image")
    good = labels_np == 0
    bad_good = ~np.isin(kinds_np[good], ("none", "good"))
    if bad_good.any():
        raise DataError(f"a good image (label 0) has anomaly kind {kinds_np[good][bad_good][0]!r}; expected "
                        "'none'")
    anomalous = labels_np == 1
    bad_kind = ~np.isin(kinds_np[anomalous], ("logical", "structural"))
    if bad_kind.any():
        raise DataError(f"an anomalous image (label 1) has anomaly kind {kinds_np[anomalous][bad_kind][0]!r}; "
                        "expected 'logical' or 'structural'")
    if not (good | anomalous).all():
        raise DataError("image labels must be 0 (good) or 1 (anomalous); found other values")
    if not (anomalous.any() and good.any()):
        raise DataError(f"image AUROC needs both good and anomalous images, but found {int(good.sum())} good "
                        f"and {int(anomalous.sum())} anomalous")
    result: dict[str, float] = {}
    for kind in ("logical", "structural"):
        members = anomalous & (kinds_np == kind)
        if not members.any():
            result[kind] = float("nan")
            continue
        subset = good | members
        result[kind] = image_auroc(labels_np[subset], scores_a[like(subset, scores_a)])
    result["mean"] = (result["logical"] + result["structural"]) / 2.0
    return result


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def _defects_by_value(defects_config: Sequence[Mapping[str, Any]] | str | os.PathLike
                      ) -> dict[int, Mapping[str, Any]]:
    source = "defects_config"
    if isinstance(defects_config, (str, os.PathLike)):
        source = os.fspath(defects_config)
        try:
            with open(defects_config, encoding="utf-8") as handle:
                defects_config = json.load(handle)
        except FileNotFoundError:
            raise DataError(f"{source}: defects config not found") from None
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{source}: not a readable defects config ({error})") from None
    if not isinstance(defects_config, Sequence) or isinstance(defects_config, (str, bytes)):
        raise DataError(f"{source}: expected a list of defect entries")
    by_value: dict[int, Mapping[str, Any]] = {}
    for index, entry in enumerate(defects_config):
        missing = [key for key in _CONFIG_KEYS if not isinstance(entry, Mapping) or key not in entry]
        if missing:
            raise DataError(f"{source}: entry {index} lacks {missing}")
        value = int(entry["pixel_value"])
        if value in by_value:
            raise DataError(f"{source}: pixel value {value} is listed twice")
        threshold = float(entry["saturation_threshold"])
        if not (math.isfinite(threshold) and threshold > 0):
            raise DataError(f"{source}: entry {index} ({entry['defect_name']}) has saturation_threshold "
                            f"{threshold}; it must be positive")
        by_value[value] = entry
    return by_value


def _pixel_value_of(mask: np.ndarray, index: int) -> int:
    values = np.unique(mask[mask != 0])
    if len(values) != 1:
        raise DataError(f"defect channel {index}: expected one nonzero pixel value in its mask, found "
                        f"{values.tolist()[:5]}; pass pixel_values explicitly")
    return int(values[0])
