"""MVTec LOCO metrics: saturation areas, the exact sPRO curve / AUC-sPRO, per-kind image AUROC.

The sPRO reference thresholds the maps at every distinct score and measures, per defect channel,
min(TP / saturation area, 1) and the FPR over pixels that are in no channel of their image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.metrics import arrays as arrays_module
from anomalyflow.metrics import auc_spro, aupro, loco_image_aurocs, saturation_areas, spro_curve

CONFIG = [
    {"defect_name": "missing_thing", "pixel_value": 255, "saturation_threshold": 0.5,
     "relative_saturation": True},
    {"defect_name": "extra_thing", "pixel_value": 254, "saturation_threshold": 6300,
     "relative_saturation": False},
    {"defect_name": "scratch", "pixel_value": 253, "saturation_threshold": 1.0, "relative_saturation": True},
]


# --------------------------------------------------------------------------------------------------
# slow reference
# --------------------------------------------------------------------------------------------------

def reference_spro_curve(maps: np.ndarray, defects: list) -> tuple[np.ndarray, np.ndarray]:
    defect_free = np.ones(maps.shape, dtype=bool)
    channels = []
    for image, image_defects in enumerate(defects):
        for mask, saturation in image_defects:
            defect_free[image] &= ~mask
            channels.append((image, mask, min(saturation, mask.sum())))
    fprs, spros = [0.0], [0.0]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fprs.append((predicted & defect_free).sum() / defect_free.sum())
        spros.append(np.mean([min((predicted[image] & mask).sum() / saturation, 1.0)
                              for image, mask, saturation in channels]))
    return np.array(fprs), np.array(spros)


def reference_area(fprs: np.ndarray, values: np.ndarray, limit: float) -> float:
    area = 0.0
    for i in range(1, len(fprs)):
        x0, x1, y0, y1 = fprs[i - 1], fprs[i], values[i - 1], values[i]
        if x1 <= limit:
            area += (x1 - x0) * (y0 + y1) / 2
            continue
        if x0 < limit:
            y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += (limit - x0) * (y0 + y_limit) / 2
        break
    return area / limit


def random_loco_case(rng: np.random.Generator, *, ties: bool) -> tuple[np.ndarray, list]:
    """Good images, images with 1-3 (often overlapping) channels, relative and absolute saturation."""
    n, h, w = int(rng.integers(2, 6)), int(rng.integers(4, 12)), int(rng.integers(4, 12))
    maps = ((rng.integers(0, int(rng.integers(2, 6)), (n, h, w)) / 4.0) if ties
            else rng.normal(size=(n, h, w))).astype(np.float32)
    defects: list = []
    for image in range(n):
        image_defects = []
        if image > 0 and rng.random() < 0.3:  # a good image (image 0 always has a defect)
            defects.append(image_defects)
            continue
        for _ in range(int(rng.integers(1, 4))):
            top, left = int(rng.integers(0, h - 1)), int(rng.integers(0, w - 1))
            mask = np.zeros((h, w), dtype=bool)
            mask[top: top + int(rng.integers(1, h)), left: left + int(rng.integers(1, w))] = True
            mask &= rng.random((h, w)) < 0.9  # ragged, possibly several components per channel
            if not mask.any():
                mask[top, left] = True
            area = int(mask.sum())
            kind = rng.integers(0, 3)
            saturation = (area * rng.uniform(0.1, 1.0) if kind == 0  # relative: non-integer
                          else float(rng.integers(1, area + 3)) if kind == 1  # absolute, may exceed area
                          else rng.uniform(0.3, area + 2.0))
            maps[image][mask] += np.float32(rng.uniform(0, 1.0)) if not ties else np.float32(0.25)
            image_defects.append((mask, saturation))
        defects.append(image_defects)
    return maps, defects


# --------------------------------------------------------------------------------------------------
# saturation areas
# --------------------------------------------------------------------------------------------------

def test_saturation_areas_relative_absolute_scaled_and_capped() -> None:
    big = np.zeros((100, 100), dtype=np.uint8)
    big[:80, :80] = 254  # 6400 px, absolute threshold 6300 fits
    small = np.zeros((100, 100), dtype=np.uint8)
    small[:10, :10] = 254  # 100 px: the absolute 6300 is capped at the area
    relative = np.zeros((100, 100), dtype=np.uint8)
    relative[:30, :10] = 255  # 300 px, 50 %
    areas = saturation_areas([big, small, relative], [254, 254, 255], CONFIG)
    np.testing.assert_allclose(areas, [6300, 100, 150])
    # Masks resized to a quarter of the side: absolute thresholds scale by 1/16, relative ones follow
    # the resized area by themselves.
    resized = [m[::4, ::4] != 0 for m in (big, small, relative)]
    areas = saturation_areas(resized, [254, 254, 255], CONFIG, area_scale=(1 / 4) ** 2)
    np.testing.assert_allclose(areas, [6300 / 16, min(6300 / 16, 3 * 3), 0.5 * 8 * 3])


def test_saturation_areas_reads_pixel_values_and_config_file(tmp_path: Path) -> None:
    path = tmp_path / "defects_config.json"
    path.write_text(json.dumps(CONFIG))
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2:4, 2:6] = 253
    np.testing.assert_allclose(saturation_areas([mask], None, path), [8.0])
    np.testing.assert_allclose(saturation_areas([torch.from_numpy(mask)], None, str(path)), [8.0])


def test_saturation_areas_errors(tmp_path: Path) -> None:
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[0, 0] = 7
    with pytest.raises(DataError, match="pixel value 7"):
        saturation_areas([mask], None, CONFIG)
    with pytest.raises(DataError, match="empty mask"):
        saturation_areas([np.zeros((4, 4))], [255], CONFIG)
    with pytest.raises(DataError, match="not found"):
        saturation_areas([mask], [255], tmp_path / "missing.json")
    with pytest.raises(DataError, match="lacks"):
        saturation_areas([mask], [255], [{"defect_name": "x", "pixel_value": 255}])
    with pytest.raises(DataError, match="listed twice"):
        saturation_areas([mask], [255], [CONFIG[0], CONFIG[0]])
    two_values = mask.copy()
    two_values[1, 1] = 9
    with pytest.raises(DataError, match="one nonzero pixel value"):
        saturation_areas([two_values], None, CONFIG)


# --------------------------------------------------------------------------------------------------
# sPRO
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(60))
def test_spro_curve_equals_threshold_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps, defects = random_loco_case(rng, ties=seed % 3 != 0)
    expected_fprs, expected_spros = reference_spro_curve(maps, defects)
    fprs, spros = spro_curve(maps, defects)
    assert fprs.shape == expected_fprs.shape
    np.testing.assert_allclose(fprs, expected_fprs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spros, expected_spros, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_auc_spro_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    maps, defects = random_loco_case(rng, ties=seed % 2 == 0)
    fprs, spros = reference_spro_curve(maps, defects)
    limits = (0.01, 0.05, 0.1, 0.3, 1.0)
    result = auc_spro(maps, defects)
    assert list(result) == list(limits)
    for limit in limits:
        assert result[limit] == pytest.approx(reference_area(fprs, spros, limit), abs=1e-9)


def test_float64_maps_keep_exact_ties() -> None:
    rng = np.random.default_rng(21)
    maps, defects = random_loco_case(rng, ties=True)
    maps64 = maps.astype(np.float64) + 1e-12 * rng.integers(0, 3, maps.shape)  # ties float32 would merge
    fprs, spros = reference_spro_curve(maps64, defects)
    np.testing.assert_allclose(spro_curve(maps64, defects)[1], spros, atol=1e-12)
    for limit, value in auc_spro(maps64, defects).items():
        assert value == pytest.approx(reference_area(fprs, spros, limit), abs=1e-9)


def test_overlapping_channels_count_in_each() -> None:
    # Two channels share pixel (0,0); covering only that pixel covers 1/1 of channel A and 1/2 of B.
    maps = np.zeros((1, 2, 3), dtype=np.float32)
    maps[0, 0, 0] = 1.0
    a = np.zeros((2, 3), dtype=bool)
    a[0, 0] = True
    b = np.zeros((2, 3), dtype=bool)
    b[0, 0] = b[0, 1] = True
    fprs, spros = spro_curve(maps, [[(a, 1.0), (b, 2.0)]])
    np.testing.assert_allclose(fprs, [0, 0, 1])
    np.testing.assert_allclose(spros, [0, 0.75, 1])


def test_saturation_by_hand() -> None:
    # One channel of 4 px with saturation 2.5, 4 defect-free pixels; scores 4,3,2,1 on the defect.
    maps = np.array([[[4, 3, 2, 1, 0.5, 0.4, 0.3, 0.2]]], dtype=np.float32)
    mask = np.array([[True] * 4 + [False] * 4])
    fprs, spros = spro_curve(maps, [[(mask, 2.5)]])
    np.testing.assert_allclose(spros, [0, 0.4, 0.8, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(fprs, [0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1])
    assert auc_spro(maps, [[(mask, 2.5)]], fpr_limits=(0.1,)) == {0.1: pytest.approx(1.0)}


def test_spro_with_full_saturation_equals_pro_for_single_region_channels() -> None:
    rng = np.random.default_rng(5)
    masks = ndimage.binary_dilation(rng.random((6, 24, 24)) > 0.99, np.ones((1, 3, 3), bool))
    masks[0, 5:8, 5:8] = True
    maps = np.round(rng.random(masks.shape) + 0.3 * masks, 2).astype(np.float32)
    defects = []
    for mask in masks:
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        defects.append([(labels == k, float((labels == k).sum())) for k in range(1, count + 1)])
    for limit in (0.05, 0.3, 1.0):
        assert auc_spro(maps, defects, (limit,))[limit] == pytest.approx(aupro(masks, maps, limit), abs=1e-12)


def test_spro_torch_path_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    maps, defects = random_loco_case(rng, ties=True)
    expected = auc_spro(maps, defects)
    monkeypatch.setattr(arrays_module, "use_torch", lambda x: isinstance(x, torch.Tensor))
    torch_defects = [[(torch.from_numpy(mask), saturation) for mask, saturation in image] for image in defects]
    result = auc_spro(torch.from_numpy(maps), torch_defects)
    for limit, value in expected.items():
        assert result[limit] == pytest.approx(value, abs=1e-12)


@pytest.mark.cuda
def test_spro_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(10)
    maps, defects = random_loco_case(rng, ties=True)
    expected = auc_spro(maps, defects)
    result = auc_spro(torch.from_numpy(maps).cuda(), defects)
    for limit, value in expected.items():
        assert result[limit] == pytest.approx(value, abs=1e-6)


def test_spro_errors() -> None:
    maps = np.zeros((2, 3, 3), dtype=np.float32)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    with pytest.raises(DataError, match="none of the 2 image"):
        auc_spro(maps, [[], []])
    with pytest.raises(DataError, match="2 image.*1"):
        auc_spro(maps, [[(mask, 1.0)]])
    with pytest.raises(DataError, match="is empty"):
        auc_spro(maps, [[(np.zeros((3, 3), bool), 1.0)], []])
    with pytest.raises(DataError, match=r"shape \(4, 4\).*3x3"):
        auc_spro(maps, [[(np.ones((4, 4), bool), 1.0)], []])
    with pytest.raises(DataError, match="saturation area"):
        auc_spro(maps, [[(mask, 0.0)], []])
    with pytest.raises(DataError, match="every pixel lies"):
        auc_spro(maps[:1], [[(np.ones((3, 3), bool), 1.0)]])
    with pytest.raises(ConfigError, match="fpr_limit"):
        auc_spro(maps, [[(mask, 1.0)], []], fpr_limits=(0.3, 2.0))
    bad = maps.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(NumericalError):
        auc_spro(bad, [[(mask, 1.0)], []])


# --------------------------------------------------------------------------------------------------
# image AUROC per anomaly kind
# --------------------------------------------------------------------------------------------------

def test_loco_image_aurocs_each_kind_against_all_good() -> None:
    rng = np.random.default_rng(0)
    kinds = np.array(["none"] * 10 + ["logical"] * 6 + ["structural"] * 7)
    labels = (kinds != "none").astype(int)
    scores = np.round(rng.random(len(kinds)) + 0.3 * labels, 1)  # ties
    result = loco_image_aurocs(labels, kinds, scores)
    for kind in ("logical", "structural"):
        subset = (kinds == "none") | (kinds == kind)
        assert result[kind] == pytest.approx(roc_auc_score(labels[subset], scores[subset]), abs=1e-12)
    assert result["mean"] == pytest.approx((result["logical"] + result["structural"]) / 2)
    assert loco_image_aurocs(list(labels), list(kinds), torch.from_numpy(scores)) == pytest.approx(result)


def test_loco_image_aurocs_missing_kind_is_nan() -> None:
    result = loco_image_aurocs([0, 0, 1, 1], ["none", "good", "structural", "structural"], [0.1, 0.2, 0.3, 0.4])
    assert result["structural"] == 1.0
    assert math.isnan(result["logical"]) and math.isnan(result["mean"])


def test_loco_image_aurocs_errors() -> None:
    with pytest.raises(DataError, match="found 0 good and 2 anomalous"):
        loco_image_aurocs([1, 1], ["logical", "structural"], [0.1, 0.2])
    with pytest.raises(DataError, match="found 2 good and 0 anomalous"):
        loco_image_aurocs([0, 0], ["none", "none"], [0.1, 0.2])
    with pytest.raises(DataError, match="'scratch'"):
        loco_image_aurocs([0, 1], ["none", "scratch"], [0.1, 0.2])
    with pytest.raises(DataError, match="'logical'"):
        loco_image_aurocs([0, 1], ["logical", "logical"], [0.1, 0.2])
    with pytest.raises(DataError, match="one entry per image"):
        loco_image_aurocs([0, 1], ["none", "logical"], [0.1])
    with pytest.raises(NumericalError):
        loco_image_aurocs([0, 1], ["none", "logical"], [0.1, float("nan")])
