import pytest
import torch
import torch.nn.functional as F

from anomalyflow.errors import ConfigError
from anomalyflow.nets.backbones import LayerExtractor, build_backbone
from anomalyflow.patches.features import PatchFeatures, combine_layers


def test_patch_features_grid_and_dimension():
    extractor = PatchFeatures("resnet18", ["layer2", "layer3"], weights="none", patch_size=3, embed_dim=64)
    out = extractor(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 8, 8, 64)
    assert torch.isfinite(out).all()


def test_aggregation_with_equal_dims_is_a_local_mean():
    # With layer_dim = C the channel-major adaptive pooling averages each channel over its p×p window.
    layer = torch.randn(1, 4, 6, 6)
    out = combine_layers([layer], patch_size=3, layer_dim=4, embed_dim=4)
    expected = F.avg_pool2d(layer, 3, stride=1, padding=1, count_include_pad=True)
    torch.testing.assert_close(out[0].permute(2, 0, 1), expected[0])



def patchcore_reference_combination(maps, patch_size, layer_dim, embed_dim):
    """PatchCore's own order of operations: unfold, resize every unfolded element, then pool."""
    reference = maps[0].shape[-2:]
    pooled = []
    for layer_map in maps:
        b, c, h, w = layer_map.shape
        patches = F.unfold(layer_map, patch_size, padding=patch_size // 2).reshape(b, c, patch_size, patch_size, h, w)
        if (h, w) != reference:
            patches = F.interpolate(patches.reshape(-1, 1, h, w), size=reference, mode="bilinear",
                                    align_corners=False).reshape(b, c, patch_size, patch_size, *reference)
        vectors = patches.permute(0, 4, 5, 1, 2, 3).reshape(-1, 1, c * patch_size * patch_size)
        pooled.append(F.adaptive_avg_pool1d(vectors, layer_dim))
    features = F.adaptive_avg_pool1d(torch.cat(pooled, dim=2), embed_dim).squeeze(1)
    return features.reshape(maps[0].shape[0], *reference, embed_dim)


# (layer_dim, embed_dim): equal groups everywhere; uneven groups in the layers; uneven in the final pool.
@pytest.mark.parametrize("dims", [(16, 16), (16, 8), (10, 16), (7, 5)])
def test_aggregation_equals_patchcore_order_of_operations(dims):
    generator = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 8, 8, 8, generator=generator), torch.randn(2, 12, 4, 4, generator=generator),
            torch.randn(2, 5, 3, 3, generator=generator)]
    got = combine_layers(maps, 3, *dims)
    assert got.shape == (2, 8, 8, dims[1]) and got.is_contiguous()
    torch.testing.assert_close(got, patchcore_reference_combination(maps, 3, *dims), rtol=1e-5, atol=1e-6)

def test_densenet_layers_map_to_dense_blocks_and_bad_layers_fail():
    extractor = LayerExtractor(build_backbone("densenet201", "none"), ["layer2", "layer3"])
    maps = extractor(torch.randn(1, 3, 64, 64))
    assert [m.shape[-1] for m in maps] == [8, 4]
    with pytest.raises(ConfigError, match="layer9"):
        LayerExtractor(build_backbone("resnet18", "none"), ["layer9"])
    with pytest.raises(ConfigError, match="not supported"):
        build_backbone("vgg_nonexistent")


def test_weights_from_a_local_state_dict(tmp_path):
    model = build_backbone("resnet18", "none")
    path = tmp_path / "r18.pth"
    torch.save(model.state_dict(), path)
    again = build_backbone("resnet18", str(path))
    torch.testing.assert_close(again.conv1.weight, model.conv1.weight)
    with pytest.raises(ConfigError, match="does not exist"):
        build_backbone("resnet18", str(tmp_path / "missing.pth"))
