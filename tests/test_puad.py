import numpy as np
import pandas as pd
import pytest

from anomalyflow.errors import LeakageError, NumericalError
from anomalyflow.puad import PooledGaussian, zscore_statistics


def ledoit_wolf_by_hand(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2004) shrinkage as sklearn defines it, written out: (1−δ)·S + δ·μ·I."""
    n, p = x.shape
    centred = x - x.mean(axis=0)
    sample = centred.T @ centred / n
    mu = np.trace(sample) / p
    delta = ((sample - mu * np.eye(p)) ** 2).sum() / p
    beta_bar = sum(((np.outer(row, row) - sample) ** 2).sum() for row in centred) / (n * n * p)
    shrinkage = min(beta_bar, delta) / delta
    return (1 - shrinkage) * sample + shrinkage * mu * np.eye(p)


def mahalanobis_by_hand(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """docs/methods.md B, transcribed: s_U = sqrt(max(0, (f−μ)ᵀ pinv(Σ_LW) (f−μ)))."""
    mean = train.mean(axis=0)
    precision = np.linalg.pinv(ledoit_wolf_by_hand(train))
    return np.array([np.sqrt(max(0.0, (f - mean) @ precision @ (f - mean))) for f in test])


@pytest.mark.parametrize("n,c", [(12, 40), (30, 384), (50, 20)])
def test_pooled_gaussian_matches_the_formula_including_the_singular_case(n, c):
    rng = np.random.default_rng(n * c)
    train = rng.normal(size=(n, c)) @ rng.normal(size=(c, c)) * 0.3 + rng.normal(size=c)
    test = rng.normal(size=(9, c)) * 1.5
    got = PooledGaussian().fit(train).score(test)
    np.testing.assert_allclose(got, mahalanobis_by_hand(train, test), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n,c,h,w", [(12, 40, 7, 5), (30, 384, 14, 14), (50, 20, 3, 9)])
def test_position_terms_sum_to_the_squared_distance(n, c, h, w):
    import torch

    rng = np.random.default_rng(n + c + h)
    train = rng.normal(size=(n, c)) @ rng.normal(size=(c, c)) * 0.3 + rng.normal(size=c)
    gaussian = PooledGaussian().fit(train)
    # near μ, positions unlike one another: some pull the pooled vector back towards μ (negative terms)
    grid = gaussian.mean[None, :, None, None] + rng.normal(size=(6, c, h, w)) + 0.2 * rng.normal(size=(6, c, 1, 1))
    terms = gaussian.position_terms(torch.from_numpy(grid)).numpy()
    assert terms.shape == (6, h, w) and terms.dtype == np.float64
    squared = gaussian.score(grid.mean(axis=(2, 3))) ** 2
    np.testing.assert_allclose(terms.sum(axis=(1, 2)), squared, rtol=1e-5)
    # any centre grid whose spatial mean is μ splits d² exactly too (PUAD's: the training normals' mean grid)
    centre = rng.normal(size=(c, h, w))
    centre += gaussian.mean[:, None, None] - centre.mean(axis=(1, 2), keepdims=True)
    centred = gaussian.position_terms(torch.from_numpy(grid), centre).numpy()
    np.testing.assert_allclose(centred.sum(axis=(1, 2)), squared, rtol=1e-5)
    assert not np.allclose(centred, terms)
    # float32 features, as the student gives them, still split exactly: the terms are summed in float64
    single = gaussian.position_terms(torch.from_numpy(grid).float()).numpy()
    np.testing.assert_allclose(single.sum(axis=(1, 2)), gaussian.score(grid.astype(np.float32).mean(
        axis=(2, 3), dtype=np.float64)) ** 2, rtol=1e-5)


def test_a_position_on_the_far_side_of_the_mean_has_a_negative_term():
    import torch

    gaussian = PooledGaussian(np.zeros(2), np.eye(2), np.eye(2))
    grid = torch.tensor([[[[3.0, -1.0]], [[0.0, 0.0]]]])  # [1, C=2, h=1, w=2]: f = (1, 0), d² = 1
    np.testing.assert_allclose(gaussian.position_terms(grid).numpy(), [[[1.5, -0.5]]])


def test_save_load_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 6))
    model = PooledGaussian().fit(x)
    model.save(tmp_path / "g.npz")
    np.testing.assert_array_equal(PooledGaussian.load(tmp_path / "g.npz").score(x), model.score(x))


def test_zscores_come_from_validation_only_and_need_spread():
    rows = pd.DataFrame({"path": ["a", "b", "c"], "split": ["validation"] * 3})
    mean, std = zscore_statistics(np.array([1.0, 2.0, 3.0]), rows, purpose="z")
    assert mean == 2.0 and std == pytest.approx(np.sqrt(2 / 3))  # population std, as PUAD
    leaking = rows.assign(split=["validation", "validation", "test"])
    with pytest.raises(LeakageError, match="test-split"):
        zscore_statistics(np.array([1.0, 2.0, 3.0]), leaking, purpose="z")
    with pytest.raises(NumericalError, match="no spread"):
        zscore_statistics(np.ones(3), rows, purpose="z")


@pytest.fixture(scope="module")
def puad_folder(tmp_path_factory):
    import torch
    from efficientad_helpers import make_category

    from anomalyflow.efficientad.quantiles import validation_quantiles
    from anomalyflow.efficientad.train import train_efficientad
    from anomalyflow.nets.pdn import pdn_small
    from anomalyflow.puad import fit_puad

    root = tmp_path_factory.mktemp("puad")
    table = make_category(root / "data", n_train=5, n_val=4, side=64)
    torch.manual_seed(3)
    torch.save(pdn_small().state_dict(), root / "teacher.pt")
    train_efficientad(table, root / "teacher.pt", root / "efficientad_s", {"iterations": 2, "image_size": 64},
                      device="cpu")
    validation_quantiles(root / "efficientad_s", table, root / "efficientad_s" / "quantiles.json", device="cpu")
    fit_puad(table, root / "efficientad_s", root / "puad_s", {"batch_size": 4}, device="cpu")
    return root, table


def test_fused_score_is_the_sum_of_validation_zscores(puad_folder):
    from anomalyflow.data.table import read_samples
    from anomalyflow.families import score_folder

    root, table = puad_folder
    scores = score_folder(root / "puad_s", table, root / "scores.csv", None, device="cpu")
    validation = scores[scores["split"] == "validation"]
    for column in ("score_efficientad", "score_mahalanobis"):
        values = validation[column].to_numpy()
        z = (values - values.mean()) / values.std()
        scores[f"z_{column}"] = (scores[column] - values.mean()) / values.std()
        assert abs(z.mean()) < 1e-9
    np.testing.assert_allclose(scores["score"], scores["z_score_efficientad"] + scores["z_score_mahalanobis"],
                               rtol=1e-6, atol=1e-9)
    assert set(scores["path"]) == set(read_samples(table).query("split != 'train'")["path"])


def test_puad_folder_points_at_its_efficientad_folder(puad_folder):
    import json

    root, _ = puad_folder
    meta = json.loads((root / "puad_s" / "model.json").read_text())
    assert meta["efficientad_dir"] == "../efficientad_s" and meta["feature"] == "student"


def test_fused_map_is_the_sum_of_validation_zscored_maps(puad_folder):
    import json

    from anomalyflow.families import score_folder
    from anomalyflow.outputs import read_map_layers, read_maps

    root, table = puad_folder
    scores = score_folder(root / "puad_s", table, root / "puad_scores.csv", root / "puad_maps.npz", device="cpu")
    score_folder(root / "efficientad_s", table, root / "ead_scores.csv", root / "ead_maps.npz", device="cpu")
    fused, paths, _ = read_maps(root / "puad_maps.npz")
    structural, structural_paths, _ = read_maps(root / "ead_maps.npz")
    logical = read_map_layers(root / "puad_maps.npz")["logical"]
    assert paths == structural_paths == scores["path"].tolist()
    assert fused.shape == structural.shape == logical.shape and logical.dtype == np.float32
    validation = (scores["split"] == "validation").to_numpy()
    n = json.loads((root / "puad_s" / "model.json").read_text())["map_normalisation"]
    # the constants are the validation maps' pixel statistics (population std), nothing of the test split
    for name, values in (("structural", structural), ("logical", logical)):
        assert n[f"mean_{name}"] == pytest.approx(values[validation].mean(dtype=np.float64), rel=1e-5, abs=1e-7)
        assert n[f"std_{name}"] == pytest.approx(values[validation].std(dtype=np.float64), rel=1e-5)
    with np.load(root / "puad_s" / "position_mean.npz") as data:  # μ_p: its spatial mean is μ, exactly
        centre = data["position_mean"]
    with np.load(root / "puad_s" / "gaussian.npz") as data:
        np.testing.assert_allclose(centre.mean(axis=(1, 2)), data["mean"], rtol=1e-12, atol=1e-12)
    expected = ((structural - n["mean_structural"]) / n["std_structural"]
                + (logical - n["mean_logical"]) / n["std_logical"])
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5)
    # without map padding the logical map is the bilinear upsampling of L_p, whose grid mean is d² = s_U²: the
    # upsampled map's mean stays close to it (bilinear weights sum to one away from the border)
    np.testing.assert_allclose(logical.mean(axis=(1, 2)), scores["score_mahalanobis"] ** 2, rtol=0.1, atol=1e-3)


def peaks_inside(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Whether each map's maximum ``[N, H, W]`` lies on its mask ``[N, H, W]`` (bool ``[N]``), in one pass."""
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat]


def missing_object_maps(run, category: str, method: str = "puad_s") -> dict[str, np.ndarray]:
    """The demo's missing-object test images of ``category`` (LOCO-style: a logical image whose mask has the
    pixel value ``defects_config.json`` gives ``missing_object``): the missing objects' ground truth at the
    maps' size and PUAD's logical, fused and (its base's) structural maps, ``[N, H, W]`` each."""
    import torch

    from anomalyflow.data.images import load_mask_channels
    from anomalyflow.data.mvtec_loco import read_defects_config_file
    from anomalyflow.data.table import read_samples
    from anomalyflow.outputs import read_map_layers, read_maps

    folder = run / "results" / "demo" / category
    config = read_defects_config_file(run / "resources" / "data" / "demo" / category / "defects_config.json")
    missing = next(entry["pixel_value"] for entry in config if entry["defect_name"] == "missing_object")
    rows = read_samples(folder / "samples.csv").query("split == 'test' and anomaly_kind == 'logical'")
    channels = [load_mask_channels(paths) for paths in rows["mask_paths"]]
    chosen = [i for i, (_, values) in enumerate(channels) if missing in values]
    masks = np.stack([channels[i][0][np.asarray(channels[i][1]) == missing].any(axis=0) for i in chosen])
    paths_wanted = rows["path"].iloc[chosen].tolist()
    arrays = {}
    for name, path, layer in (("fused", folder / method / "maps.npz", None),
                              ("logical", folder / method / "maps.npz", "logical"),
                              ("structural", folder / "efficientad_s" / "maps.npz", None)):
        maps, paths, frames = read_maps(path)
        assert (frames == [0, 0, 1, 1]).all()  # EfficientAD's maps cover the whole image
        order = [paths.index(p) for p in paths_wanted]
        arrays[name] = (read_map_layers(path)[layer] if layer else maps)[order]
    size = arrays["fused"].shape[1:]
    arrays["mask"] = torch.nn.functional.interpolate(torch.from_numpy(masks.astype(np.float32))[:, None],
                                                     size=size, mode="nearest-exact")[:, 0].numpy() > 0.5
    return arrays


@pytest.mark.slow
def test_logical_map_peaks_inside_a_missing_object_more_often_than_chance(demo_run, summary_table, monkeypatch):
    """Issue 16.1: over every missing-object test image of the demo, the logical map's argmax lies inside the
    ground-truth region (where the piece should be) more often than a uniformly random pixel would."""
    monkeypatch.chdir(demo_run)  # the sample tables hold paths relative to the run
    per_category = [missing_object_maps(demo_run, category) for category in ("tray", "board")]
    joined = {name: np.concatenate([c[name] for c in per_category]) for name in per_category[0]}
    chance = float(joined["mask"].mean())  # the mean mask area fraction: a random pixel's hit rate
    rates = {name: float(peaks_inside(joined[name], joined["mask"]).mean())
             for name in ("logical", "fused", "structural")}
    summary_table("PUAD logical map on the demo's missing-object images: argmax inside the GT region",
                  [f"{len(joined['mask'])} images, chance (mean mask area fraction) {chance:.3f}"]
                  + [f"{name:10s} {rate:.3f}" for name, rate in rates.items()])
    assert len(joined["mask"]) >= 4 and rates["logical"] > chance, (rates, chance)
