import numpy as np
import pytest
import torch
from pni_helpers import TINY, tiny_dataset

from anomalyflow.errors import ConfigError, DataError
from anomalyflow.families import load_model, score_folder
from anomalyflow.patches.nearest import distances
from anomalyflow.pni.gates import score
from anomalyflow.pni.model import PNI, resolve_params
from anomalyflow.pni.stages import fit_pni_memory, fit_pni_mlp


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("pni")
    samples = tiny_dataset(root)
    fit_pni_memory(samples, root / "model", TINY, device="cpu", features_path=root / "features.npy")
    model = fit_pni_mlp(samples, root / "model", TINY, device="cpu", features_path=root / "features.npy")
    return root, samples, model


def _test_images(model, root, n=4):
    from PIL import Image

    return torch.stack([model.transform()(Image.open(root / f"test{i}.png").convert("RGB")) for i in range(n)])


def test_stage_files_and_sizes(fitted):
    root, _, model = fitted
    names = {p.name for p in (root / "model").iterdir()}
    assert {"coreset_emb.faiss", "coreset_dist.faiss", "coreset_emb_edge.faiss", "position.npz", "memory.json",
            "neighbourhood.pt", "neighbourhood.json", "model.json"} <= names
    assert model.grid == (8, 8)
    # 8 train images x 16 interior positions x 0.25 = 32 = |C_emb| >= |C_dist| = 16; 8 x 64 x 0.25 = 128 with edge.
    assert (len(model.banks.emb), len(model.banks.dist), len(model.banks.emb_edge)) == (32, 16, 128)
    torch.testing.assert_close(model.banks.dist, model.banks.emb[:16], rtol=0, atol=0)
    assert model.counts["no_edge"].shape == (64, 32) and model.counts["with_edge"].shape == (64, 128)
    # Each position holds one vote per train image and interior position within r = 4: all 16 at the interior,
    # 3x3 of them at a corner.
    votes = model.counts["no_edge"].sum(1).view(8, 8)
    assert (votes[2:-2, 2:-2] == 8 * 16).all() and votes[0, 0] == 8 * 9 and votes[0, 4] == 8 * 12
    cache = np.load(root / "features.npy")
    assert cache.shape == (8, 8, 8, 32) and cache.dtype == np.float32


def test_fit_save_load_predict_round_trip(fitted):
    root, _, model = fitted
    loaded = PNI.load(root / "model", "cpu")
    images = _test_images(model, root)
    scores, maps = model.predict(images)
    scores_loaded, maps_loaded = loaded.predict(images)
    np.testing.assert_array_equal(scores, scores_loaded)
    torch.testing.assert_close(maps, maps_loaded, rtol=0, atol=0)
    assert maps.shape == (4, 64, 64) and scores.dtype == np.float64
    assert scores[2:].min() > scores[:2].max()  # the bright square


def test_score_kinds_and_official_compat(fitted):
    root, _, model = fitted
    images = _test_images(model, root)
    patch = model.patch_scores(images, ("nb", "pos", "pos_edge"))
    assert all(v.shape == (4, 8, 8) for v in patch.values())
    scores, _ = model.predict(images)
    nb_coor = 0.5 * (patch["nb"] + patch["pos"])
    np.testing.assert_allclose(scores, nb_coor[:, 2:-2, 2:-2].amax(dim=(1, 2)).numpy(), rtol=1e-6)
    for kind in ("nb", "coor"):
        other = PNI.load(root / "model", "cpu")
        other.params = resolve_params({**other.params, "score": kind})  # parameters are read-only
        assert other.predict(images)[1].shape == (4, 64, 64)
    compat = PNI.load(root / "model", "cpu")
    compat.params = resolve_params({**compat.params, "official_compat": True})
    compat_patch = compat.patch_scores(images, ("nb", "pos"))
    # Any gate's score lies between the plain nearest entry's and the farthest entry's.
    dist = distances(model.features(images).reshape(-1, 32), model.banks.emb)
    low, high = (score(d, model.params["prob_gamma"]).view(4, 8, 8) for d in (dist.amin(1), dist.amax(1)))
    for value in (patch["nb"], patch["pos"], *compat_patch.values()):
        assert (value >= low - 1e-5).all() and (value <= high + 1e-5).all()
    assert not torch.equal(patch["pos"], low)  # the position gate does reject some nearest entries here


def test_scoring_records_the_crop_frame(fitted):
    root, samples, _ = fitted
    table = score_folder(root / "model", samples, root / "scores.csv", root / "maps.npz", device="cpu")
    assert table["split"].value_counts().to_dict() == {"validation": 2, "test": 4}
    assert isinstance(load_model(root / "model", "cpu"), PNI)
    with np.load(root / "maps.npz") as data:
        assert data["maps"].shape == (6, 64, 64)
        # 80x96 images: shorter side 72 -> 72x86, crop 64 at (4, 11); one frame per map.
        np.testing.assert_allclose(data["frame"], np.tile([4 / 72, 11 / 86, 64 / 72, 64 / 86], (6, 1)))


def test_cache_and_recomputed_features_give_the_same_mlp(fitted, tmp_path):
    root, samples, model = fitted
    import shutil

    shutil.copytree(root / "model", tmp_path / "model")
    again = fit_pni_mlp(samples, tmp_path / "model", TINY, device="cpu")  # no cache: recomputed, float32
    for (name, a), b in zip(model.mlp.state_dict().items(), again.mlp.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_mlp_stage_refuses_changed_memory_parameters_and_wrong_caches(fitted, tmp_path):
    root, samples, _ = fitted
    with pytest.raises(ConfigError, match="coreset_fraction"):
        fit_pni_mlp(samples, root / "model", {**TINY, "coreset_fraction": 0.5}, device="cpu")
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8, 32), np.float32))
    with pytest.raises(DataError, match="bad.npy"):
        fit_pni_mlp(samples, root / "model", TINY, device="cpu", features_path=tmp_path / "bad.npy")


def test_unknown_score_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="score"):
        PNI({**TINY, "score": "everything"})
