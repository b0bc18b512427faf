import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from test_patchcore import PARAMS, _dataset

from anomalyflow.patchcore import fit_patchcore
from anomalyflow.predict import predict_images
from anomalyflow.scoring import score_category


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    samples = _dataset(root)
    folder = root / "results" / "patchcore"
    fit_patchcore(samples, folder, PARAMS, device="cpu")
    score_category(folder, samples, folder / "scores.csv", folder / "maps.npz", device="cpu")
    new = root / "new images"
    new.mkdir()
    for i in range(3):
        image = np.full((80, 90, 3), 120, np.uint8)
        if i == 2:
            image[30:50, 30:50] = 250
        Image.fromarray(image).save(new / f"näme {i}.png")
    return folder, new


def test_predict_writes_maps_overlays_and_a_thresholded_table(model_dir, tmp_path):
    folder, images = model_dir
    table = predict_images(folder, images, tmp_path / "out", device="cpu")
    validation = pd.read_csv(folder / "scores.csv").query("split == 'validation'")["score"]
    assert table["threshold"].iloc[0] == pytest.approx(np.quantile(validation, 0.99))
    assert len(table) == 3 and table["score"].iloc[2] == table["score"].max()
    anomaly_map = tifffile.imread(tmp_path / "out" / table["map"].iloc[0])
    assert anomaly_map.shape == (64, 64) and anomaly_map.dtype == np.float32
    overlay = Image.open(tmp_path / "out" / table["overlay"].iloc[0])
    assert overlay.size == (90, 80)
    saved = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert saved["anomalous"].dtype == bool and saved["path"].tolist() == table["path"].tolist()


def test_cli_runs_and_reports_errors_in_one_line(model_dir, tmp_path):
    folder, images = model_dir
    ok = subprocess.run([sys.executable, "-m", "anomalyflow", "predict", "--model", str(folder), "--images",
                         str(images), "--out", str(tmp_path / "cli"), "--device", "cpu", "--map-format", "npy",
                         "--threshold", "none"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert np.load(tmp_path / "cli" / "maps" / "näme 0.npy").shape == (64, 64)
    bad = subprocess.run([sys.executable, "-m", "anomalyflow", "predict", "--model", str(tmp_path), "--images",
                          str(images), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "not a trained model folder" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
