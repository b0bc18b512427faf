import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

from anomalyflow.errors import ConfigError
from anomalyflow.pni.geometry import (
    ResizeShorter,
    crop_frame,
    interior_mask,
    interior_max,
    patch_map_to_pixels,
    pni_transform,
    shorter_side_size,
)


@pytest.mark.parametrize("size", [(80, 96), (96, 80), (64, 64), (511, 700)])
def test_shorter_side_resize_equals_torchvision(size):
    from torchvision import transforms as T

    height, width = size
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8))
    ours = np.asarray(ResizeShorter(72)(image))
    theirs = np.asarray(T.Resize(72)(image))
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    assert min(ours.shape[:2]) == 72


def test_transform_is_resize_then_centre_crop():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 96, 3), dtype=np.uint8))
    plain = pni_transform(72, 64, normalize=False)(image)
    assert plain.shape == (3, 64, 64) and float(plain.min()) >= 0 and float(plain.max()) <= 1
    resized = np.asarray(ResizeShorter(72)(image))  # 72 x 86
    top, left = 4, 11
    np.testing.assert_allclose(plain.permute(1, 2, 0).numpy(), resized[top:top + 64, left:left + 64] / 255, atol=1e-6)
    assert pni_transform(72, 64)(image).shape == (3, 64, 64)
    with pytest.raises(ConfigError, match="crop"):
        pni_transform(64, 72)


def test_frame_of_the_official_geometry():
    # 512 resize of a square image, 480 crop: 16 px cut off on each side.
    assert crop_frame(900, 900, 512, 480) == pytest.approx((16 / 512, 16 / 512, 480 / 512, 480 / 512))
    assert shorter_side_size(80, 96, 72) == (72, 86)
    top, left, height, width = crop_frame(80, 96, 72, 64)
    assert (top, left) == pytest.approx((4 / 72, 11 / 86)) and (height, width) == pytest.approx((64 / 72, 64 / 86))


def test_interior_is_the_grid_without_its_edge():
    mask = interior_mask(60, 60, 2)
    assert int(mask.sum()) == 56 * 56
    assert not mask[:2].any() and not mask[:, -2:].any() and mask[2:-2, 2:-2].all()
    with pytest.raises(ConfigError, match="no interior"):
        interior_mask(4, 4, 2)


def test_map_geometry_crops_the_edge_pads_resizes_and_blurs():
    patch = torch.rand(2, 8, 8)
    patch[:, 0, :] = 100.0  # an edge value that must not survive
    out = patch_map_to_pixels(patch, 2, 64, 0.0)
    assert out.shape == (2, 64, 64)
    assert float(out.max()) <= float(patch[:, 2:-2, 2:-2].max()) + 1e-6
    # Replicate padding: without blur, the 16x16 corner block of a 64 map equals the inner corner value.
    inner = patch[:, 2:-2, 2:-2]
    torch.testing.assert_close(out[:, 0, 0], inner[:, 0, 0])
    blurred = patch_map_to_pixels(patch, 2, 64, 3.0)
    expected = np.stack([ndi.gaussian_filter(m, 3.0) for m in out.numpy().astype(np.float64)])
    np.testing.assert_allclose(blurred.numpy(), expected, atol=1e-5)
    full = patch_map_to_pixels(patch, 0, 64, 0.0)
    assert float(full.max()) == pytest.approx(100.0)


def test_image_score_is_the_interior_maximum():
    patch = torch.zeros(3, 8, 8)
    patch[0, 0, 0] = 50.0  # edge: ignored
    patch[1, 3, 4] = 2.0
    patch[2, 2, 2] = 1.0
    assert interior_max(patch, 2).tolist() == [0.0, 2.0, 1.0]
    assert interior_max(patch, 0).tolist() == [50.0, 2.0, 1.0]
