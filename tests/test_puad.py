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
    assert not (root / "maps.npz").exists()
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
