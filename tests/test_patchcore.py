import numpy as np
import torch
from PIL import Image

from anomalyflow.data.table import make_table, write_samples
from anomalyflow.device import resolve_device
from anomalyflow.families import load_model, score_folder
from anomalyflow.nets.backbones import build_backbone
from anomalyflow.patchcore import PatchCore, fit_patchcore

PARAMS = {"backbone": "resnet18", "image_size": 64, "embed_dim": 64, "coreset_fraction": 0.25, "batch_size": 4,
          "weights": "none", "blur_sigma": 1.0}


def _dataset(tmp_path, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", n_train), ("validation", 2), ("test", n_test)):
        for i in range(n):
            image = np.full((64, 64, 3), 120, np.uint8) + rng.integers(0, 8, (64, 64, 3), dtype=np.uint8)
            anomalous = split == "test" and i >= n_test // 2
            masks = []
            if anomalous:
                image[20:30, 20:30] = 250
                mask = np.zeros((64, 64), np.uint8)
                mask[20:30, 20:30] = 255
                Image.fromarray(mask).save(tmp_path / f"{split}{i}_mask.png")
                masks = [str(tmp_path / f"{split}{i}_mask.png")]
            Image.fromarray(image).save(tmp_path / f"{split}{i}.png")
            rows.append(dict(dataset="t", category="c", path=str(tmp_path / f"{split}{i}.png"), split=split,
                             label=int(anomalous), defect_type="bright" if anomalous else "good",
                             anomaly_kind="structural" if anomalous else "none", mask_paths=masks))
    write_samples(make_table(rows), tmp_path / "samples.csv")
    return tmp_path / "samples.csv"


def test_random_init_is_the_same_network_in_every_process():
    a, b = build_backbone("resnet18", "none"), build_backbone("resnet18", "none")
    torch.testing.assert_close(a.layer3[0].conv1.weight, b.layer3[0].conv1.weight)
    state = torch.random.get_rng_state()
    build_backbone("resnet18", "none")
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random stream is untouched


def test_fit_save_load_predict_round_trip(tmp_path):
    samples = _dataset(tmp_path)
    model = fit_patchcore(samples, tmp_path / "model", PARAMS, device="cpu")
    loaded = load_model(tmp_path / "model", "cpu")
    assert isinstance(loaded, PatchCore) and len(loaded.bank) == len(model.bank)
    images = torch.stack([model.transform()(Image.open(tmp_path / f"test{i}.png").convert("RGB")) for i in range(4)])
    scores, maps = model.predict(images)
    scores_loaded, _ = loaded.predict(images)
    np.testing.assert_allclose(scores, scores_loaded, rtol=1e-5)
    assert maps.shape == (4, 64, 64)
    assert scores[2:].min() > scores[:2].max()  # the bright square is the most unusual patch
    # A scoring script loads its family's class with the config's device, "auto" included.
    assert PatchCore.load(tmp_path / "model", "auto").bank.device == resolve_device("auto")


def test_scoring_writes_validation_and_test_rows(tmp_path):
    samples = _dataset(tmp_path)
    fit_patchcore(samples, tmp_path / "model", PARAMS, device="cpu")
    table = score_folder(tmp_path / "model", samples, tmp_path / "scores.csv", tmp_path / "maps.npz", device="cpu")
    assert table["split"].value_counts().to_dict() == {"validation": 2, "test": 4}
    with np.load(tmp_path / "maps.npz") as data:
        assert data["maps"].shape == (6, 64, 64)
        assert list(data["paths"]) == table["path"].tolist()
