import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as tv

from anomalyflow.data import transforms as ours


@pytest.fixture(params=[(37, 53), (300, 200), (64, 64)])
def image(request):
    h, w = request.param
    return Image.fromarray(np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [32, (48, 40), 256])
def test_image_transform_is_torchvisions(image, size):
    reference = tv.Compose([tv.Resize(size if isinstance(size, tuple) else (size, size)), tv.ToTensor(),
                            tv.Normalize(ours.IMAGENET_MEAN, ours.IMAGENET_STD)])
    assert torch.equal(ours.image_transform(size)(image), reference(image))
    resize = tv.Resize(size if isinstance(size, tuple) else (size, size))
    assert torch.equal(ours.uint8_transform(size)(image), tv.Compose([resize, tv.PILToTensor()])(image))


@pytest.mark.parametrize("crop", [16, (21, 30)])
def test_center_crop_is_torchvisions(image, crop):
    assert ours.CenterCrop(crop)(image).tobytes() == tv.CenterCrop(crop)(image).tobytes()


def test_processes_that_only_score_do_not_import_torchvision():
    import subprocess
    import sys

    code = ("import sys, anomalyflow.scoring, anomalyflow.efficientad.model, anomalyflow.evaluate; "
            "print('torchvision' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
