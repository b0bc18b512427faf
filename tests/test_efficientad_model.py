"""EfficientAD inference (A6): validation quantiles, maps, geometry, features, the generic scorer."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from efficientad_helpers import make_category

from anomalyflow.data.loader import image_transform, load_images
from anomalyflow.data.table import read_samples
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.efficientad.quantiles import map_quantiles, quantile_linear, row_quantile, validation_quantiles
from anomalyflow.efficientad.train import train_efficientad
from anomalyflow.errors import DataError, LeakageError, NumericalError
from anomalyflow.nets.pdn import pdn_small
from anomalyflow.scoring import score_paths

SIDE = 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    table = make_category(root / "data", n_train=3, n_val=3, side=SIDE)
    torch.manual_seed(3)
    torch.save(pdn_small().state_dict(), root / "teacher.pt")
    train_efficientad(table, root / "teacher.pt", root / "model", {"iterations": 2, "image_size": SIDE}, device="cpu")
    quantiles = validation_quantiles(root / "model", table, root / "model" / "quantiles.json", device="cpu")
    return root / "model", table, quantiles


def _paths(table, split):
    frame = read_samples(table)
    return frame.loc[frame["split"] == split, "path"].tolist()


def test_quantiles_file_and_values_match_torch_quantile(trained):
    folder, table, _ = trained
    saved = json.loads((folder / "quantiles.json").read_text())
    assert {"q_st_a", "q_st_b", "q_ae_a", "q_ae_b", "maps"} <= set(saved) and saved["maps"] == "resized"
    model = EfficientAD.load(folder, "cpu")
    st, ae = model.maps(load_images(_paths(table, "validation"), model.transform()))
    assert st.shape == (3, 8, 8)  # 64 → 61 → 30 → 27 → 13 → 11 → 8
    for kind, maps in (("st", st), ("ae", ae)):
        resized = F.interpolate(maps.unsqueeze(1), size=(SIDE, SIDE), mode="bilinear").flatten()
        assert saved[f"q_{kind}_a"] == pytest.approx(float(torch.quantile(resized, 0.9)), rel=1e-5)
        assert saved[f"q_{kind}_b"] == pytest.approx(float(torch.quantile(resized, 0.995)), rel=1e-5)
    raw = validation_quantiles(folder, table, folder.parent / "raw.json", device="cpu", maps="raw")
    assert raw["maps"] == "raw" and raw["n_values"] == 3 * 8 * 8
    assert raw["q_st_b"] == pytest.approx(float(torch.quantile(st.flatten(), 0.995)), rel=1e-5)


def test_training_leaves_the_quantiles_alone_and_loading_refuses_them_for_other_weights(trained, tmp_path):
    """quantiles.json is the quantile stage's file: training again does not delete it (no stage writes another's
    file), and the model refuses quantiles computed for other weights until they are computed again."""
    folder, table, _ = trained
    again = shutil.copytree(folder, tmp_path / "model")
    train_efficientad(table, folder.parent / "teacher.pt", again, {"iterations": 3, "image_size": SIDE}, device="cpu")
    assert (again / "quantiles.json").read_bytes() == (folder / "quantiles.json").read_bytes()
    with pytest.raises(DataError, match="computed for other weights"):
        EfficientAD.load(again, "cpu")
    validation_quantiles(again, table, again / "quantiles.json", device="cpu")
    assert EfficientAD.load(again, "cpu").quantiles["weights"] != json.loads((folder / "quantiles.json").read_text())[
        "weights"]


def test_test_rows_never_reach_the_quantiles(trained):
    folder, table, _ = trained
    model = EfficientAD.load(folder, "cpu")
    rows = read_samples(table)
    with pytest.raises(LeakageError, match="test-split"):
        map_quantiles(model, rows)  # the whole table, test rows included
    with pytest.raises(LeakageError, match="test"):
        map_quantiles(model, rows.loc[rows["split"] == "test"])


def test_quantiles_of_more_than_16_8_million_values():
    n = 17_000_000  # torch.quantile refuses more than 16,777,216 elements
    values = np.random.default_rng(0).permutation(n).astype(np.float32)
    q_a, q_b = quantile_linear(values, (0.9, 0.995))
    assert q_a == pytest.approx(0.9 * (n - 1)) and q_b == pytest.approx(0.995 * (n - 1))
    rows = torch.rand(3, 1000)
    for q in (0.999, 0.5, 0.1234):
        torch.testing.assert_close(row_quantile(rows, q), torch.quantile(rows, q, dim=1))


def test_predict_shapes_scores_and_p_formula(trained):
    folder, table, q = trained
    model = EfficientAD.load(folder, "cpu")
    images = load_images(_paths(table, "test"), image_transform(SIDE))
    scores, maps = model.predict(images)
    assert scores.shape == (4,) and maps.shape == (4, SIDE, SIDE) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, maps.reshape(4, -1).amax(1).numpy(), rtol=1e-6)
    # P: resize each raw map to the input size, then normalise with the quantiles and average.
    st, ae = model.maps(images)
    st = F.interpolate(st.unsqueeze(1), size=(SIDE, SIDE), mode="bilinear").squeeze(1)
    ae = F.interpolate(ae.unsqueeze(1), size=(SIDE, SIDE), mode="bilinear").squeeze(1)
    expected = (0.5 * 0.1 * (st - q["q_st_a"]) / (q["q_st_b"] - q["q_st_a"])
                + 0.5 * 0.1 * (ae - q["q_ae_a"]) / (q["q_ae_b"] - q["q_ae_a"]))
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)



def test_cpu_micro_batches_give_the_whole_batch_result(trained, monkeypatch):
    import anomalyflow.efficientad.model as efficientad_model

    folder, table, _ = trained
    model = EfficientAD.load(folder, "cpu")
    images = load_images(_paths(table, "test"), image_transform(SIDE))
    assert [len(chunk) for chunk in model.micro_batches(images)] == [1, 1, 1, 1]
    one_by_one = model.predict(images)
    monkeypatch.setattr(efficientad_model, "CPU_MICRO_BATCH", 3)
    assert [len(chunk) for chunk in model.micro_batches(images)] == [3, 1]
    uneven = model.predict(images)
    monkeypatch.setattr(efficientad_model, "CPU_MICRO_BATCH", 64)
    whole = model.predict(images)
    for got in (one_by_one, uneven):
        np.testing.assert_allclose(got[0], whole[0], rtol=1e-5)
        torch.testing.assert_close(got[1], whole[1], rtol=1e-5, atol=1e-6)

def test_n_geometry_pads_four_zeros_before_resizing(trained):
    folder, table, _ = trained
    images = load_images(_paths(table, "test")[:2], image_transform(SIDE))
    p_model = EfficientAD.load(folder, "cpu")
    n_model = EfficientAD.load(folder, "cpu", map_padding=4)
    _, p_maps = p_model.predict(images)
    _, n_maps = n_model.predict(images)
    assert n_maps.shape == p_maps.shape == (2, SIDE, SIDE)
    assert not torch.allclose(n_maps, p_maps)
    # 8×8 → 16×16 with zeros → 64×64: the corner pixels are the zero padding itself
    assert torch.all(n_maps[:, 0, 0] == 0) and torch.all(n_maps[:, -1, -1] == 0)
    q = p_model.quantiles
    st, ae = p_model.maps(images)
    combined = 0.5 * 0.1 * (st - q["q_st_a"]) / (q["q_st_b"] - q["q_st_a"]) + \
        0.5 * 0.1 * (ae - q["q_ae_a"]) / (q["q_ae_b"] - q["q_ae_a"])
    padded = F.pad(combined, (4, 4, 4, 4))
    torch.testing.assert_close(n_maps, F.interpolate(padded.unsqueeze(1), size=(SIDE, SIDE),
                                                     mode="bilinear").squeeze(1))


def test_features_for_puad(trained):
    folder, table, _ = trained
    model = EfficientAD.load(folder, "cpu")
    images = load_images(_paths(table, "train"), image_transform(SIDE))
    teacher, student, _ = model.outputs(images)
    f = model.student_features(images)
    assert f.shape == (3, 384) and f.dtype == torch.float32
    torch.testing.assert_close(f, student[:, :384].mean(dim=(2, 3)))
    torch.testing.assert_close(model.teacher_features(images), teacher.mean(dim=(2, 3)))


def test_generic_scorer_drives_the_model(trained):
    folder, table, _ = trained
    model = EfficientAD.load(folder, "cpu")
    assert model.family == "efficientad" and model.params["batch_size"] == 16
    assert model.map_frame(100, 300) == (0, 0, 1, 1)
    scores, maps, extras = score_paths(model, _paths(table, "test"), batch_size=3, desc=None)
    assert extras == {}
    direct, _ = model.predict(load_images(_paths(table, "test"), model.transform()))
    np.testing.assert_allclose(scores, direct, rtol=1e-5)
    assert maps.shape == (4, SIDE, SIDE)


def test_degenerate_quantiles_and_missing_files(trained, tmp_path):
    folder, _, quantiles = trained
    model = EfficientAD.load(folder, "cpu")
    model.quantiles = {**quantiles, "q_st_b": quantiles["q_st_a"]}
    with pytest.raises(NumericalError, match="non-finite"):
        model.predict(torch.zeros(1, 3, SIDE, SIDE))
    with pytest.raises(Exception, match="model.json"):
        EfficientAD.load(tmp_path, "cpu")
    empty = tmp_path / "m"
    empty.mkdir()
    (empty / "model.json").write_text(json.dumps({"family": "efficientad", "size": "s", "image_size": SIDE}))
    with pytest.raises(DataError, match="teacher.pt"):
        EfficientAD.load(empty, "cpu")
