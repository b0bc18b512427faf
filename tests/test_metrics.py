"""Image/pixel AUROC and the official MVTec AD AU-PRO against independent slow references.

The references here are deliberately naive: sklearn's ``roc_auc_score`` for the AUROCs, and for PRO a
Python sweep over every distinct score that thresholds the maps and measures FPR and per-region
overlap directly (regions from ``scipy.ndimage.label`` with the official 3×3 structure, per image).
Run this file as a script (``python tests/test_metrics.py``) to print timings on 100 maps of 256².
"""

from __future__ import annotations

import bisect
import time

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.metrics import arrays as arrays_module
from anomalyflow.metrics import auc_spro, aupro, image_auroc, pixel_auroc, pro_curve

LIMITS = (0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 1.0)


# --------------------------------------------------------------------------------------------------
# slow references
# --------------------------------------------------------------------------------------------------

def reference_pro_curve(masks: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threshold at every distinct score (descending); FPR and mean region overlap measured directly."""
    regions = []
    for image, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(image, labels == k) for k in range(1, count + 1)]
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fprs.append((predicted & normal).sum() / normal.sum())
        pros.append(np.mean([(predicted[image] & region).sum() / region.sum() for image, region in regions]))
    return np.array(fprs), np.array(pros)


def reference_area(fprs: np.ndarray, values: np.ndarray, limit: float) -> float:
    """Segment by segment: full trapezoids up to the limit, then the interpolated partial one."""
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


def official_style_aupro(masks: np.ndarray, maps: np.ndarray, limit: float) -> float:
    """The official MVTec AD steps, restated: argsort once, cumulative sums, keep the last point of
    each tie, (0, 0) in front and (1, 1) behind, trapezoid with bisect-interpolation at the limit."""
    fp_change = np.zeros(maps.shape)
    pro_change = np.zeros(maps.shape)
    n_regions = 0
    for image, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        n_regions += count
        fp_change[image][labels == 0] = 1
        for k in range(1, count + 1):
            pro_change[image][labels == k] = 1.0 / (labels == k).sum()
    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    scores = maps.ravel()[order]
    fprs = np.cumsum(fp_change.ravel()[order]) / fp_change.sum()
    pros = np.cumsum(pro_change.ravel()[order]) / n_regions
    last_of_tie = np.append(np.diff(scores) != 0, True)
    fprs = np.concatenate(([0.0], np.minimum(fprs[last_of_tie], 1.0), [1.0]))
    pros = np.concatenate(([0.0], np.minimum(pros[last_of_tie], 1.0), [1.0]))
    correction = 0.0
    if limit not in fprs:
        ins = bisect.bisect(fprs.tolist(), limit)
        y_at_limit = pros[ins - 1] + (pros[ins] - pros[ins - 1]) * (limit - fprs[ins - 1]) / (fprs[ins] - fprs[ins - 1])
        correction = 0.5 * (y_at_limit + pros[ins - 1]) * (limit - fprs[ins - 1])
    inside = fprs <= limit
    x, y = fprs[inside], pros[inside]
    return (np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction) / limit


def random_case(rng: np.random.Generator, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Small stack: several regions per image, some good images, optionally scores on a few levels."""
    n, h, w = int(rng.integers(1, 6)), int(rng.integers(3, 13)), int(rng.integers(3, 13))
    masks = rng.random((n, h, w)) < rng.uniform(0.05, 0.4)
    good = rng.random(n) < 0.3
    masks[good] = False
    masks[0, 0, 0] = True  # at least one region
    masks[-1, -1, -1] = False  # at least one normal pixel
    if ties:
        levels = int(rng.integers(2, 7))
        maps = (rng.integers(0, levels, (n, h, w)) / levels).astype(np.float32)
    else:
        maps = rng.normal(size=(n, h, w)).astype(np.float32)
    maps += masks * np.float32(rng.uniform(0, 1))  # make the detector better than chance, sometimes
    return masks, maps


@pytest.fixture
def torch_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send CPU tensors down the torch code path that CUDA tensors take."""
    monkeypatch.setattr(arrays_module, "use_torch", lambda x: isinstance(x, torch.Tensor))


# --------------------------------------------------------------------------------------------------
# image AUROC
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_image_auroc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    labels = rng.integers(0, 2, n)
    labels[:2] = (0, 1)
    scores = rng.integers(0, int(rng.integers(1, 6)), n).astype(np.float64) if seed % 2 else rng.normal(size=n)
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_image_auroc_accepts_lists_bools_ints_and_tensors() -> None:
    labels, scores = [False, True, False, True, True], [1, 3, 2, 2, 5]
    expected = roc_auc_score(labels, scores)
    assert image_auroc(labels, scores) == pytest.approx(expected)
    assert image_auroc(torch.tensor(labels), torch.tensor(scores, dtype=torch.float16)) == pytest.approx(expected)


def test_image_auroc_extremes_and_all_tied() -> None:
    assert image_auroc([0, 0, 1], [0.1, 0.2, 0.3]) == 1.0
    assert image_auroc([1, 0, 0], [0.1, 0.2, 0.3]) == 0.0
    assert image_auroc([1, 0, 1, 0], [0.5] * 4) == 0.5


# --------------------------------------------------------------------------------------------------
# pixel AUROC
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_pixel_auroc_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    masks, maps = random_case(rng, ties=seed % 2 == 0)
    if seed % 5 == 0:  # more anomalous than normal pixels: the other branch of the rank sum
        masks = ~masks
        masks[-1, -1, -1] = False
    expected = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(expected, abs=1e-12)


def test_pixel_auroc_float64_and_signed_zeros() -> None:
    masks = np.array([[[True, False, False, True]]])
    maps = np.array([[[0.0, -0.0, -1e-300, 1e-300]]])  # -0.0 and 0.0 are one tie
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))


# --------------------------------------------------------------------------------------------------
# PRO curve and AU-PRO
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(60))
def test_pro_curve_equals_threshold_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks, maps = random_case(rng, ties=seed % 3 != 0)
    expected_fprs, expected_pros = reference_pro_curve(masks, maps)
    fprs, pros = pro_curve(masks, maps)
    assert fprs.shape == expected_fprs.shape  # one point per distinct score, plus the (0, 0) start
    np.testing.assert_allclose(fprs, expected_fprs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pros, expected_pros, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_aupro_matches_reference_to_1e_6_with_ties(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    masks, maps = random_case(rng, ties=seed % 4 != 0)
    fprs, pros = reference_pro_curve(masks, maps)
    for limit in LIMITS:
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(reference_area(fprs, pros, limit), abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_aupro_matches_official_steps_on_larger_tied_maps(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    masks = ndimage.binary_dilation(rng.random((8, 48, 40)) > 0.995, np.ones((1, 5, 5), bool))
    masks[rng.random(8) < 0.4] = False
    masks[0, 10:14, 10:13] = True
    maps = ndimage.gaussian_filter(rng.random(masks.shape), (0, 2, 2)) + 0.1 * masks
    maps = np.round(maps * 40) / 40  # a few dozen levels: heavy ties
    for limit in (0.01, 0.05, 0.3, 1.0):
        assert aupro(masks, maps, limit) == pytest.approx(official_style_aupro(masks, maps, limit), abs=1e-6)


def test_aupro_float64_maps_keep_their_exact_ties() -> None:
    """float64 scores that float32 would merge keep their order (dense-rank path)."""
    rng = np.random.default_rng(7)
    masks = rng.random((3, 9, 9)) < 0.3
    masks[0, 0, 0], masks[-1, -1, -1] = True, False
    maps = 0.5 + rng.integers(0, 4, masks.shape) * 1e-12  # distinct in float64, equal in float32
    fprs, pros = reference_pro_curve(masks, maps)
    assert len(np.unique(maps.astype(np.float32))) == 1 < len(np.unique(maps))
    for limit in (0.05, 0.3, 1.0):
        assert aupro(masks, maps, limit) == pytest.approx(reference_area(fprs, pros, limit), abs=1e-12)
    np.testing.assert_allclose(pro_curve(masks, maps)[1], pros, atol=1e-12)


def test_truncated_curve_stops_at_first_point_reaching_limit() -> None:
    rng = np.random.default_rng(3)
    masks, maps = random_case(rng, ties=False)
    full_fprs, full_pros = pro_curve(masks, maps)
    fprs, pros = pro_curve(masks, maps, fpr_limit=0.3)
    assert fprs[-1] >= 0.3 and (len(fprs) == 1 or fprs[-2] < 0.3)
    np.testing.assert_array_equal(fprs, full_fprs[: len(fprs)])
    np.testing.assert_array_equal(pros, full_pros[: len(pros)])


def test_integration_interpolates_at_the_limit_by_hand() -> None:
    # One image, one row: pixel 0 is the only region; four normal pixels. The region ties with one
    # normal pixel at 0.5, so the curve goes (0, 0) -> (0.25, 1) diagonally, then flat to (1, 1).
    masks = np.array([[[True, False, False, False, False]]])
    maps = np.array([[[0.5, 0.5, 0.4, 0.3, 0.2]]], dtype=np.float32)
    fprs, pros = pro_curve(masks, maps)
    np.testing.assert_allclose(fprs, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(pros, [0, 1, 1, 1, 1])
    # limit 0.1 lies inside the diagonal: PRO(0.1) = 0.4, area = 0.1 * 0.4 / 2 = 0.02 -> / 0.1 = 0.2
    assert aupro(masks, maps, fpr_limit=0.1) == pytest.approx(0.2, abs=1e-15)
    # limit 0.3: triangle 0.125 + flat 0.05 at PRO 1 -> 0.175 / 0.3
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.175 / 0.3, abs=1e-15)
    # exactly on a point (0.25): just the triangle
    assert aupro(masks, maps, fpr_limit=0.25) == pytest.approx(0.5, abs=1e-15)
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.875, abs=1e-15)


def test_tie_is_one_point_not_split() -> None:
    # Region scores tie with a normal pixel above everything: no threshold separates them.
    masks = np.array([[[True, False, False]]])
    maps = np.array([[[0.9, 0.9, 0.1]]], dtype=np.float32)
    fprs, pros = pro_curve(masks, maps)
    np.testing.assert_allclose(fprs, [0, 0.5, 1])
    np.testing.assert_allclose(pros, [0, 1, 1])


def test_regions_are_8_connected_per_image() -> None:
    # Two diagonal pixels form ONE region; the same pattern split over two images is two regions.
    diagonal = np.zeros((1, 4, 4), dtype=bool)
    diagonal[0, 1, 1] = diagonal[0, 2, 2] = True
    maps = np.zeros((1, 4, 4), dtype=np.float32)
    maps[0, 1, 1] = 1.0  # covers half of the single region at the first threshold
    _, pros = pro_curve(diagonal, maps)
    assert pros[1] == pytest.approx(0.5)
    # Across images: pixel (1,1) of image 0 and (2,2) of image 1 never merge into one region.
    split = np.zeros((2, 4, 4), dtype=bool)
    split[0, 1, 1] = split[1, 2, 2] = True
    maps2 = np.zeros((2, 4, 4), dtype=np.float32)
    maps2[0, 1, 1] = 1.0
    assert pro_curve(split, maps2)[1][1] == pytest.approx(0.5)  # one of two regions fully covered
    maps3 = np.zeros((2, 4, 4), dtype=np.float32)
    maps3[0] = np.eye(4)  # image 0 diagonal: its region plus 3 false positives
    assert reference_pro_curve(split, maps3)[1][1] == pytest.approx(pro_curve(split, maps3)[1][1])


def test_input_layouts_agree() -> None:
    rng = np.random.default_rng(11)
    masks, maps = random_case(rng, ties=True)
    expected = aupro(masks, maps)
    assert aupro(masks[:, None], maps[:, None]) == pytest.approx(expected)
    assert aupro(list(masks), list(maps)) == pytest.approx(expected)
    assert aupro(torch.from_numpy(masks), torch.from_numpy(maps)) == pytest.approx(expected)
    assert aupro(masks[0], maps[0]) == pytest.approx(aupro(masks[:1], maps[:1]))
    assert aupro(masks.astype(np.uint8) * 255, maps) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------------
# torch code path (the one CUDA tensors take), exercised on CPU tensors
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_torch_path_matches_numpy_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(500 + seed)
    masks, maps = random_case(rng, ties=seed % 2 == 0)
    labels = masks.reshape(len(masks), -1).any(1).astype(int)
    labels[0] = 1 - labels[-1] if labels.min() == labels.max() else labels[0]
    scores = maps.reshape(len(maps), -1).max(1)
    expected = (pixel_auroc(masks, maps), aupro(masks, maps), aupro(masks, maps, 0.05),
                image_auroc(labels, scores) if 0 < labels.sum() < len(labels) else None,
                pro_curve(masks, maps))
    monkeypatch.setattr(arrays_module, "use_torch", lambda x: isinstance(x, torch.Tensor))
    t_masks, t_maps = torch.from_numpy(masks), torch.from_numpy(maps)
    assert pixel_auroc(t_masks, t_maps) == pytest.approx(expected[0], abs=1e-12)
    assert aupro(t_masks, t_maps) == pytest.approx(expected[1], abs=1e-12)
    assert aupro(t_masks, t_maps.double() + 1e-12 * t_masks) == pytest.approx(
        aupro(masks, maps.astype(np.float64) + 1e-12 * masks), abs=1e-12)  # dense-rank path in torch
    assert aupro(t_masks, t_maps, 0.05) == pytest.approx(expected[2], abs=1e-12)
    if expected[3] is not None:
        assert image_auroc(torch.from_numpy(labels), torch.from_numpy(scores)) == pytest.approx(expected[3])
    fprs, pros = pro_curve(t_masks, t_maps)
    np.testing.assert_allclose(fprs, expected[4][0], atol=1e-12)
    np.testing.assert_allclose(pros, expected[4][1], atol=1e-12)


@pytest.mark.cuda
def test_cuda_matches_cpu_to_1e_6() -> None:
    rng = np.random.default_rng(0)
    masks = ndimage.binary_dilation(rng.random((20, 64, 64)) > 0.998, np.ones((1, 5, 5), bool))
    maps = (ndimage.gaussian_filter(rng.random((20, 64, 64)), (0, 2, 2)) + 0.05 * masks).astype(np.float32)
    maps = np.round(maps, 3)  # ties
    cuda_masks, cuda_maps = torch.from_numpy(masks).cuda(), torch.from_numpy(maps).cuda()
    for limit in (0.01, 0.3, 1.0):
        assert aupro(cuda_masks, cuda_maps, limit) == pytest.approx(aupro(masks, maps, limit), abs=1e-6)
    assert pixel_auroc(cuda_masks, cuda_maps) == pytest.approx(pixel_auroc(masks, maps), abs=1e-6)


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------

def test_single_class_labels_name_the_counts() -> None:
    with pytest.raises(DataError, match=r"both good and anomalous.*found 3 good and 0 anomalous"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match=r"found 0 good and 2 anomalous"):
        image_auroc([1, 1], [0.1, 0.2])


def test_bad_labels_and_shapes() -> None:
    with pytest.raises(DataError, match="0 \\(good\\) or 1"):
        image_auroc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match=r"shape \(3,\).*shape \(2,\)"):
        image_auroc([0, 1, 1], [0.1, 0.2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise_numerical_error(bad: float) -> None:
    with pytest.raises(NumericalError, match="1 NaN or infinite"):
        image_auroc([0, 1, 1], [0.1, bad, 0.3])
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 1, 1] = True
    maps = np.zeros((2, 4, 4), dtype=np.float32)
    maps[1, 2, 2] = bad
    with pytest.raises(NumericalError):
        pixel_auroc(masks, maps)
    with pytest.raises(NumericalError):
        aupro(masks, maps)


def test_empty_masks_raise_data_error() -> None:
    masks, maps = np.zeros((3, 4, 4), dtype=bool), np.random.default_rng(0).random((3, 4, 4))
    with pytest.raises(DataError, match="masks of all 3 image"):
        pixel_auroc(masks, maps)
    with pytest.raises(DataError, match="masks of all 3 image"):
        aupro(masks, maps)
    with pytest.raises(DataError, match="every ground-truth pixel is anomalous"):
        aupro(~masks, maps)


def test_shape_mismatch_names_both_shapes() -> None:
    masks, maps = np.ones((2, 4, 4), dtype=bool), np.zeros((2, 4, 5))
    for metric in (pixel_auroc, aupro):
        with pytest.raises(DataError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
            metric(masks, maps)


def test_non_binary_masks_and_bad_limits() -> None:
    masks, maps = np.full((1, 2, 2), 0.5), np.zeros((1, 2, 2))
    with pytest.raises(DataError, match="other than 0 and 1"):
        aupro(masks, maps)
    masks = np.array([[[True, False]]])
    for limit in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="fpr_limit"):
            aupro(masks, np.array([[[0.2, 0.1]]]), fpr_limit=limit)


def test_messages_are_one_line() -> None:
    for call in (lambda: image_auroc([1, 1], [0.0, 1.0]),
                 lambda: aupro(np.ones((2, 2), bool), np.zeros((3, 2)))):
        with pytest.raises(DataError) as caught:
            call()
        assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------------
# timing (printed, never asserted): `python tests/test_metrics.py` or `pytest -m slow -s`
# --------------------------------------------------------------------------------------------------

def benchmark(n_images: int = 100, size: int = 256, repeats: int = 5) -> dict[str, float]:
    rng = np.random.default_rng(0)
    masks = ndimage.binary_dilation(rng.random((n_images, size, size)) > 0.9995, np.ones((1, 9, 9), bool))
    masks[: n_images // 2] = False  # half the images are good
    maps = ndimage.gaussian_filter(rng.random((n_images, size, size), dtype=np.float32), (0, 4, 4))
    maps = (maps + 0.02 * masks).astype(np.float32)
    # LOCO-like: every 8-connected region is one defect channel saturating at half its area.
    defects = []
    for mask in masks:
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        defects.append([(labels == k, 0.5 * float((labels == k).sum())) for k in range(1, count + 1)])
    timings = {}
    for name, call in (("pixel_auroc", lambda: pixel_auroc(masks, maps)),
                       ("aupro@0.3", lambda: aupro(masks, maps, 0.3)),
                       ("aupro@1.0", lambda: aupro(masks, maps, 1.0)),
                       ("auc_spro", lambda: auc_spro(maps, defects))):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
        print(f"{name:12s} {n_images}x{size}x{size} ({masks.size / 1e6:.2f} M px): {best * 1e3:7.1f} ms "
              f"(best of {repeats}, {torch.get_num_threads()} torch threads)")
    return timings


if __name__ == "__main__":
    benchmark()
