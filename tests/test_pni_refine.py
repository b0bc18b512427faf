import numpy as np
import pytest
import torch
from pni_helpers import TINY, tiny_dataset

from anomalyflow.errors import ConfigError
from anomalyflow.families import score_folder
from anomalyflow.pni.refine import fit_pni_refined, train_refinement_net
from anomalyflow.pni.refined import RefinedPNI
from anomalyflow.pni.refinement_net import RefinementNet, forward_differences, refinement_loss
from anomalyflow.pni.stages import fit_pni_memory, fit_pni_mlp
from anomalyflow.pni.synthetic_anomalies import synthesize


@pytest.fixture(scope="module")
def net():
    return RefinementNet("none")


def _normals(n=3, size=64):
    g = torch.Generator().manual_seed(0)
    # Smooth, distinct images: every pasted or painted pixel is likely to change.
    base = torch.rand(n, 3, 1, 1, generator=g) * 0.5 + 0.25
    return (base + 0.1 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("kind", ["cutpaste", "stain", "scratch"])
def test_synthetic_masks_cover_every_changed_pixel(kind):
    normals = _normals()
    out = synthesize(normals, 9, seed=4, kinds=(kind,))
    assert out.images.shape == (9, 3, 64, 64) and out.masks.shape == (9, 64, 64)
    for i, record in enumerate(out.records):
        assert record["kind"] == kind and record["base"] == i % 3
        changed = (out.images[i] != normals[record["base"]]).any(0)
        assert out.masks[i].any() and not (changed & ~out.masks[i]).any()
        assert changed.sum() > 0.5 * out.masks[i].sum()  # the mask is not much larger than the defect
        if kind == "cutpaste":
            sy, sx, ph, pw = record["source"]
            ty, tx, _, _ = record["target"]
            assert record["donor"] != record["base"]
            torch.testing.assert_close(out.images[i][:, ty:ty + ph, tx:tx + pw],
                                       normals[record["donor"]][:, sy:sy + ph, sx:sx + pw])
            assert int(out.masks[i].sum()) == ph * pw
    again = synthesize(normals, 9, seed=4, kinds=(kind,))
    assert torch.equal(again.images, out.images) and torch.equal(again.masks, out.masks)


def test_synthetic_settings_are_checked():
    with pytest.raises(ConfigError, match="kinds"):
        synthesize(_normals(), 2, kinds=("fire",))


def test_refiner_shapes_and_zero_initial_residual(net):
    image, amap = torch.randn(2, 3, 64, 96), torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        out = net.eval()(image, amap)
    assert out.shape == (2, 1, 64, 96)
    assert torch.equal(out, torch.zeros_like(out))  # an untrained refiner leaves the map as it is
    assert net.blocks[-1].num_features == 2208 and net.decoder[0].out_channels == 768
    assert net.head.in_channels == 24
    with pytest.raises(ConfigError, match="multiple of 32"):
        net(torch.randn(1, 3, 48, 48), torch.rand(1, 1, 48, 48))


def test_loss_is_half_mse_plus_quarter_gradient_terms():
    target = torch.zeros(2, 1, 4, 5)
    assert refinement_loss(target, target).item() == 0.0
    shifted = target + 0.3  # constant offset: no gradient difference
    assert refinement_loss(shifted, target).item() == pytest.approx(0.5 * 0.09)
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(2, 1, 4, 5)
    dx, dy = forward_differences(ramp)
    assert dx[0, 0, 0].tolist() == [1, 1, 1, 1, 0] and torch.equal(dy, torch.zeros_like(dy))
    expected = 0.5 * ramp.square().mean() + 0.25 * dx.square().mean()
    assert refinement_loss(ramp, target).item() == pytest.approx(expected.item())


def test_a_few_steps_lower_the_loss(net):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 32, 32, generator=g)
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:20, 10:22] = 1.0
    inputs = (0.5 * masks + 0.2 * torch.rand(2, 1, 32, 32, generator=g)).clamp(0, 1)

    def loss() -> float:
        with torch.no_grad():
            return refinement_loss(inputs + net.train()(images, inputs), masks).item()

    before = loss()
    history = train_refinement_net(net, images, inputs, masks, iterations=3, batch_size=2, lr=1e-3, log_every=1)
    assert len(history) == 3 and history[0]["loss"] == pytest.approx(before, rel=1e-4)
    assert loss() < before


@pytest.fixture(scope="module")
def tiny_pni(tmp_path_factory):
    root = tmp_path_factory.mktemp("refine")
    samples = tiny_dataset(root, n_train=4)
    params = {**TINY, "dist_coreset_size": 8, "mlp_epochs": 1}
    fit_pni_memory(samples, root / "pni", params, device="cpu")
    return root, samples, fit_pni_mlp(samples, root / "pni", params, device="cpu")


def test_refined_model_blends_into_the_pni_map(tiny_pni, net):
    root, _, pni = tiny_pni
    from PIL import Image

    images = torch.stack([pni.transform()(Image.open(root / f"test{i}.png").convert("RGB")) for i in range(4)])
    scores, maps = pni.predict(images)
    lo, hi = float(maps.min()), float(maps.max())
    unblended = RefinedPNI(pni, net, {"refine_size": 32, "blend": 0.0}, (lo, hi))
    same_scores, same_maps = unblended.predict(images)
    np.testing.assert_array_equal(same_scores, scores)  # image_score: pni
    torch.testing.assert_close(same_maps, maps, rtol=0, atol=1e-5)
    refined = RefinedPNI(pni, net, {"refine_size": 32, "image_score": "map_max"}, (lo, hi))
    max_scores, refined_maps = refined.predict(images)
    assert refined_maps.shape == maps.shape and refined.map_frame(80, 200) == pni.map_frame(80, 200)
    np.testing.assert_allclose(max_scores, refined_maps.amax(dim=(1, 2)).double().numpy())
    with pytest.raises(ConfigError, match="refine_size"):
        RefinedPNI(pni, net, {"refine_size": 48}, (lo, hi))


def test_fit_the_refiner_and_score_the_refined_model(tiny_pni, tmp_path):
    root, samples, pni = tiny_pni
    history = fit_pni_refined(samples, root / "pni", tmp_path / "refined",
                            {"refine_size": 32, "iterations": 2, "batch_size": 2, "log_every": 1,
                             "synthetic_per_image": 1}, device="cpu")
    assert [h["step"] for h in history] == [1, 2]
    table = score_folder(tmp_path / "refined", samples, tmp_path / "scores.csv", tmp_path / "maps.npz", device="cpu")
    assert RefinedPNI.load(tmp_path / "refined", "cpu").map_frame(300, 90) == pni.map_frame(300, 90)
    pni_table = score_folder(root / "pni", samples, tmp_path / "pni_scores.csv", tmp_path / "pni_maps.npz",
                             device="cpu")
    np.testing.assert_array_equal(table["score"], pni_table["score"])  # image_score: pni
    with np.load(tmp_path / "maps.npz") as refined, np.load(tmp_path / "pni_maps.npz") as plain:
        assert refined["maps"].shape == plain["maps"].shape == (6, 64, 64)
        np.testing.assert_array_equal(refined["frame"], plain["frame"])
        # Blend 0.1 of a lightly trained residual: close to, but not exactly, the PNI map.
        assert 0 < np.abs(refined["maps"] - plain["maps"]).max() < 0.5 * np.ptp(plain["maps"])


def test_initial_weights_follow_the_seed_not_the_global_rng():
    # The decoder's init once drew from torch's global RNG, so two runs of one config refined differently.
    torch.manual_seed(1)
    a = RefinementNet("none", init_seed=3).state_dict()
    torch.rand(1000)  # whatever the process drew before must not matter
    b = RefinementNet("none", init_seed=3).state_dict()
    c = RefinementNet("none", init_seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["decoder.0.weight"], c["decoder.0.weight"])
    assert not torch.equal(a["image_stem.0.weight"], c["image_stem.0.weight"])
