"""The distillation target Ψ (A3) and its ImageNet statistics."""

import pytest
import torch
import torch.nn.functional as F
from efficientad_helpers import write_images
from PIL import Image

from anomalyflow.data.loader import image_transform
from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats, list_images, select_images
from anomalyflow.efficientad.target import TeacherTarget
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.patches.features import combine_layers


def test_wide_resnet_target_is_384_by_64_by_64_for_512_inputs_in_both_variants():
    target = TeacherTarget("p", "wide_resnet101_2", "none").to("meta")  # shapes only, no arithmetic
    for variant in ("p", "n"):
        target.variant = variant
        assert target(torch.empty(2, 3, 512, 512, device="meta")).shape == (2, 384, 64, 64)


def test_p_target_is_layer3_upsampled_concatenated_and_channel_pooled():
    target = TeacherTarget("p", "resnet18", "none")  # layer2 128 ch, layer3 256 ch: 384 after concatenation
    x = torch.randn(2, 3, 128, 128)
    layer2, layer3 = target.extractor(x)
    stacked = torch.cat([layer2, F.interpolate(layer3, size=layer2.shape[-2:], mode="bilinear")], dim=1)
    torch.testing.assert_close(target(x), stacked)  # 384 → 384: pooling is the identity
    # With WRN's 1536 channels the pooling is the mean of each run of four channels.
    rows = torch.randn(5, 1, 1536)
    torch.testing.assert_close(F.adaptive_avg_pool1d(rows, 384), rows.reshape(5, 1, 384, 4).mean(-1))


def test_n_target_is_patchcore_aggregation():
    target = TeacherTarget("n", "resnet18", "none")
    x = torch.randn(1, 3, 128, 128)
    expected = combine_layers(target.extractor(x), 3, 1024, 384).permute(0, 3, 1, 2)
    out = target(x)
    assert out.shape == (1, 384, 16, 16)
    torch.testing.assert_close(out, expected)


def test_random_targets_are_the_same_network_in_every_process_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = TeacherTarget("p", "resnet18", "none")
    assert torch.equal(torch.get_rng_state(), before)
    b = TeacherTarget("p", "resnet18", "none")
    torch.testing.assert_close(a.extractor.stages["conv1"].weight, b.extractor.stages["conv1"].weight)
    with pytest.raises(ConfigError, match="variant"):
        TeacherTarget("x", "resnet18")


def test_list_images_is_recursive_and_sorted(tmp_path):
    write_images(tmp_path / "b", 2, 0, side=16)
    write_images(tmp_path / "a" / "deep", 1, 0, side=16)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    paths = list_images(tmp_path)
    assert [p.replace(str(tmp_path), "") for p in paths] == ["/a/deep/000.png", "/b/000.png", "/b/001.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        list_images(tmp_path / "missing")


def test_select_images_is_seeded_without_replacement():
    paths = [f"{i}.png" for i in range(10)]
    chosen = select_images(paths, 4, 42)
    assert chosen == select_images(paths, 4, 42) and len(set(chosen)) == 4
    assert select_images(paths, 20, 42) == paths


def _direct_stats(target, images):
    """A3 literally: μ = mean over images of spatial means; σ² = mean over images of spatial means of (Ψ−μ)²."""
    outputs = torch.cat([target(img.unsqueeze(0)) for img in images]).double()
    mean = outputs.mean(dim=(2, 3)).mean(dim=0)
    var = (outputs - mean.view(1, -1, 1, 1)).square().mean(dim=(2, 3)).mean(dim=0)
    return mean.float(), var.sqrt().float()


@pytest.mark.parametrize("grayscale", [0.0, 1.0])
def test_stats_match_a_direct_two_pass_computation(tmp_path, grayscale):
    paths = write_images(tmp_path / "imagenet", 5, 7, side=48)
    stats = compute_imagenet_stats(tmp_path / "imagenet", tmp_path / "stats.pt", n_images=3, seed=42, variant="p",
                                   backbone="resnet18", weights="none", image_size=32, batch_size=2, device="cpu",
                                   grayscale=grayscale)
    assert stats["n_images"] == 3 and stats["mean"].shape == (384,) and stats["variant"] == "p"
    saved = torch.load(tmp_path / "stats.pt", weights_only=True)
    assert set(saved) >= {"mean", "std", "variant", "backbone", "weights", "n_images"}
    transform = image_transform(64)
    chosen = select_images(paths, 3, 42)
    images = []
    for path in chosen:
        image = Image.open(path).convert("RGB")
        images.append(transform(image.convert("L").convert("RGB") if grayscale else image))
    mean, std = _direct_stats(TeacherTarget("p", "resnet18", "none"), images)
    torch.testing.assert_close(stats["mean"], mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats["std"], std, rtol=1e-4, atol=1e-6)
