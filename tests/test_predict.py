import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image
from test_patchcore import PARAMS, _dataset

from anomalyflow.families import score_folder
from anomalyflow.metrics import image_auroc
from anomalyflow.outputs import method_outputs, read_maps, read_scores
from anomalyflow.patchcore import fit_patchcore
from anomalyflow.predict import predict_images, resolve_threshold


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    samples = _dataset(root)
    folder = root / "results" / "patchcore"
    fit_patchcore(samples, folder, PARAMS, device="cpu")
    score_folder(folder, samples, folder / "scores.csv", folder / "maps.npz", device="cpu")
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


# --- predict and the workflow agree, for every model folder the demo writes -------------------------

DEMO_CATEGORY = "tray"


@pytest.fixture
def one_thread():
    """Torch on one thread, as the demo's jobs run (config ``threads: 1``): faster on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_predict_scores_every_demo_model_folder_as_the_workflow_did(demo_run, tmp_path, monkeypatch, one_thread):
    """Every family, the ensemble (members of different input sizes) and the refined model: predict on the
    category's test images gives the workflow's scores and maps, one output per input, and verdicts that
    agree with the quantile threshold of the folder's validation scores and with its metrics.csv."""
    monkeypatch.chdir(demo_run)  # scores.csv names images relative to the run's folder
    category = Path("results") / "demo" / DEMO_CATEGORY
    folders = sorted(path.parent for path in category.glob("*/model.json"))
    families = {json.loads((folder / "model.json").read_text())["family"] for folder in folders}
    assert families == {"patchcore", "efficientad", "puad", "pni", "pni_refined", "ensemble"}
    images = Path("resources") / "data" / "demo" / DEMO_CATEGORY / "test"
    n_images = sum(1 for path in images.rglob("*.png"))
    for folder in folders:
        out = tmp_path / folder.name
        table = predict_images(folder, images, out, threshold="quantile", map_format="npy", device="cpu")
        workflow = read_scores(folder / "scores.csv")
        test = workflow.loc[workflow["split"] == "test"].set_index("path")
        assert len(table) == len(test) == n_images, folder
        assert len(list((out / "maps").iterdir())) == len(list((out / "overlays").iterdir())) == n_images, folder
        assert sorted(table["path"]) == sorted(test.index), folder
        predicted = table.set_index("path")["score"].loc[test.index]
        np.testing.assert_allclose(predicted, test["score"], rtol=1e-5, err_msg=str(folder))

        validation = workflow.loc[workflow["split"] == "validation", "score"].to_numpy()
        threshold = float(np.quantile(validation, 0.99))
        assert table["threshold"].iloc[0] == pytest.approx(threshold, rel=1e-12), folder
        verdicts = table.set_index("path")["anomalous"].loc[test.index]
        assert (verdicts == (test["score"] >= threshold)).all(), folder  # anomalous iff score >= threshold
        # The operating point of fpr 0.01 (operating_points.csv): predict's scores give its test counts.
        point = pd.read_csv(folder / "operating_points.csv").set_index("false_alarm_rate").loc[0.01]
        flagged = predicted >= resolve_threshold(folder, "fpr:0.01", 0.99)
        assert (int(flagged[test["label"] == 1].sum()), int(flagged[test["label"] == 0].sum())) == (
            point["tp"], point["fp"]), folder
        metrics = pd.read_csv(folder / "metrics.csv").iloc[0]
        assert image_auroc(test["label"], predicted) == pytest.approx(metrics["image_auroc"], abs=1e-6), folder

        maps, paths, _ = read_maps(method_outputs(folder)[1])
        position = {p: i for i, p in enumerate(paths)}
        for row in table.itertuples():
            expected = maps[position[row.path]]
            got = np.load(out / row.map)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * float(np.ptp(maps)),
                                       err_msg=f"{folder}: {row.path}")


@pytest.mark.slow
def test_cli_predicts_one_image_with_the_demo_ensemble(demo_run, tmp_path, monkeypatch, one_thread):
    """The reported command: an ensemble whose members take 112- and 128-px inputs, one test image."""
    from anomalyflow.cli import main

    monkeypatch.chdir(demo_run)
    image = sorted(Path("resources/data/demo").joinpath(DEMO_CATEGORY, "test").rglob("*.png"))[-1]
    folder = Path("results/demo") / DEMO_CATEGORY / "pni_ensemble"
    main(["predict", "--model", str(folder), "--images", str(image), "--out", str(tmp_path / "x"),
          "--threshold", "none", "--device", "cpu"])
    table = pd.read_csv(tmp_path / "x" / "predictions.csv")
    stored = read_scores(folder / "scores.csv").set_index("path")["score"]
    assert table["path"].tolist() == [str(image)]
    assert table["score"].iloc[0] == pytest.approx(stored[str(image)], rel=1e-5)
