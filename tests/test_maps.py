import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from anomalyflow.maps import gaussian_blur, pad_constant, pad_replicate, resize


@pytest.mark.parametrize("sigma", [0.5, 2.0, 4.0, 8.0])
def test_blur_matches_scipy_gaussian_filter(sigma):
    maps = np.random.default_rng(0).random((3, 21, 34))
    expected = np.stack([ndi.gaussian_filter(m, sigma) for m in maps])
    np.testing.assert_allclose(gaussian_blur(torch.from_numpy(maps), sigma).numpy(), expected, atol=1e-12)


def test_zero_sigma_is_identity_and_resize_shapes():
    maps = torch.rand(2, 7, 9)
    assert gaussian_blur(maps, 0) is maps
    assert resize(maps, 16).shape == (2, 16, 16)
    assert resize(maps, (5, 11)).shape == (2, 5, 11)
    assert pad_constant(maps, 4).shape == (2, 15, 17)
    padded = pad_replicate(maps, 2)
    assert torch.equal(padded[:, 0, 2:-2], maps[:, 0])
    assert torch.equal(padded[:, :, 0], padded[:, :, 2])
