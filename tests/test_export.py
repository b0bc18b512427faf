"""Exported models (anomalyflow.export): the ONNX file reproduces the workflow's scores and maps, and scoring it
needs onnxruntime alone, not torch."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'anomalyflow[export]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'anomalyflow[export]')")

import torch
from test_predict import model_dir  # noqa: F401  (the tiny PatchCore folder, reused as a fixture)
from test_puad import puad_folder  # noqa: F401  (a tiny PUAD folder with its EfficientAD, reused as a fixture)

from anomalyflow.errors import ConfigError, DataError
from anomalyflow.export.runtime import ExportedModel, predict_exported
from anomalyflow.export.writer import export_model
from anomalyflow.outputs import read_map_layers, read_maps, read_scores

REPO = Path(__file__).resolve().parents[1]
#: Parity with the workflow: scores to 1e-4 relative (with a floor of 1e-5 of the scores' range, for the
#: z-scored PUAD scores and EfficientAD's maxima that pass near zero), maps to 1e-3 absolute.
SCORE_RTOL, MAP_ATOL = 1e-4, 1e-3


def assert_scores_equal(got, expected, what: str) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=SCORE_RTOL, atol=1e-5 * float(np.ptp(expected)), err_msg=what)


def torch_free_env(tmp_path: Path) -> dict:
    """The environment of a subprocess in which ``import torch`` fails (a sitecustomize that blocks it)."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None\n')
    path = os.pathsep.join(filter(None, [str(blocker), str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@pytest.mark.parametrize("k", [1, 3])
def test_the_bank_search_in_the_graph_equals_faiss(tmp_path, k):
    """Matmul + top-k in onnxruntime: the neighbours and distances of faiss IndexFlatL2 (within 1e-4)."""
    import faiss
    import onnxruntime as ort

    from anomalyflow.export.graphs import BankSearch

    rng = np.random.default_rng(0)
    bank = rng.normal(size=(500, 48)).astype(np.float32) * 3
    queries = rng.normal(size=(200, 48)).astype(np.float32) * 3
    index = faiss.IndexFlatL2(48)
    index.add(bank)
    squared, _ = index.search(queries, k)
    path = tmp_path / "search.onnx"
    torch.onnx.export(BankSearch(torch.from_numpy(bank), k).eval(), (torch.from_numpy(queries[:2]),), str(path),
                      dynamo=True, input_names=["queries"], output_names=["distances"],
                      dynamic_shapes=({0: torch.export.Dim("rows", min=1)},))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (distances,) = session.run(None, {"queries": queries})
    np.testing.assert_allclose(distances, np.sqrt(squared), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):  # noqa: F811
    """The tiny PatchCore folder of test_predict, exported once."""
    folder, _ = model_dir
    return export_model(folder, tmp_path_factory.mktemp("export") / "patchcore.onnx")


def test_an_exported_patchcore_scores_like_its_folder_without_torch(model_dir, exported, tmp_path):  # noqa: F811
    folder, new_images = model_dir
    path = exported
    scores = read_scores(folder / "scores.csv")
    model = ExportedModel(path, "cpu")
    got, maps, _ = model.score_paths(scores["path"].tolist(), batch_size=3)
    assert_scores_equal(got, scores["score"], "tiny PatchCore")
    stored, paths, _ = read_maps(folder / "maps.npz")
    assert paths == scores["path"].tolist()
    assert np.abs(maps - stored).max() < MAP_ATOL
    # The command, in a process where torch cannot be imported.
    run = subprocess.run([sys.executable, "-m", "anomalyflow", "predict", "--model", str(path), "--images",
                          str(new_images), "--out", str(tmp_path / "out"), "--map-format", "npy"],
                         capture_output=True, text=True, env=torch_free_env(tmp_path))
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    in_process = predict_exported(path, new_images, tmp_path / "again", map_format="npy")
    assert len(table) == 3 and table["threshold"].iloc[0] == pytest.approx(
        np.quantile(scores.loc[scores["split"] == "validation", "score"], 0.99))
    np.testing.assert_allclose(table["score"], in_process["score"], rtol=1e-8)


def test_the_torch_blocker_blocks_torch(tmp_path):
    run = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True,
                         env=torch_free_env(tmp_path))
    assert run.returncode != 0 and "torch" in run.stderr


def test_what_cannot_be_exported_stops_with_one_line(tmp_path, model_dir, exported):  # noqa: F811
    _, images = model_dir
    fake = tmp_path / "pni_x"
    fake.mkdir()
    (fake / "model.json").write_text('{"family": "pni"}')
    for model, words in ((fake, "PNI is not exportable"), (tmp_path, "not a trained model folder")):
        run = subprocess.run([sys.executable, "-m", "anomalyflow", "export", "--model", str(model)],
                             capture_output=True, text=True)
        assert run.returncode != 0 and words in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "anomalyflow", "predict", "--model", str(exported), "--images",
                          str(images), "--out", str(tmp_path / "o"), "--threshold", "f1"],
                         capture_output=True, text=True, env=torch_free_env(tmp_path))
    assert run.returncode != 0 and "f1" in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


# --- the demo's models: the export reproduces the workflow's scores.csv and maps.npz -----------------------

DEMO_CATEGORY = "tray"


@pytest.mark.slow
def test_exports_of_the_demo_reproduce_the_workflows_scores_and_maps(demo_exports, tmp_path, monkeypatch,
                                                                     summary_table):
    """PatchCore, EfficientAD-S and PUAD-S of one demo category: every validation and test image's score (and
    PUAD's two scores and logical map) and map (PUAD's fused one) from the ONNX file equal the workflow's; PNI,
    refined PNI and the ensemble are refused with the line that says why."""
    monkeypatch.chdir(demo_exports)  # scores.csv names images relative to the run's folder
    torch.set_num_threads(1)
    category = Path("results") / "demo" / DEMO_CATEGORY
    lines = []
    for method in ("patchcore", "efficientad_s", "puad_s"):
        path = Path("results") / "demo" / "exports" / DEMO_CATEGORY / f"{method}.onnx"  # as the workflow wrote it
        scores = read_scores(category / method / "scores.csv")
        got, maps, extras = ExportedModel(path, "cpu").score_paths(scores["path"].tolist(), batch_size=16)
        assert_scores_equal(got, scores["score"], method)
        layers = read_map_layers(category / method / "maps.npz")
        assert sorted(extras) == sorted(["score_efficientad", "score_mahalanobis", "logical"]
                                        if method == "puad_s" else []), method
        for column, values in extras.items():
            if column in layers:  # PUAD's logical map: unbounded units (its mean is d²), so 1e-3 of its range
                scale = max(1.0, float(np.ptp(layers[column])))
                assert float(np.abs(values - layers[column]).max()) < MAP_ATOL * scale, f"{method}: {column}"
            else:
                assert_scores_equal(values, scores[column], f"{method}: {column}")
        stored, paths, _ = read_maps(category / method / "maps.npz")
        assert paths == scores["path"].tolist()
        map_error = float(np.abs(maps - stored).max())
        assert map_error < MAP_ATOL, method
        relative = float(np.max(np.abs(got - scores["score"]) / np.abs(scores["score"])))
        lines.append(f"{method}: max relative score difference {relative:.2e}, max map difference {map_error:.2e}")
    for method, words in (("pni_resnet18", "PNI is not exportable"), ("pni_refined", "refined PNI"),
                          ("pni_ensemble", "ensembles are not exportable")):
        with pytest.raises(ConfigError, match=words):
            export_model(category / method, tmp_path / f"{method}.onnx")
    summary_table("export parity (demo, tray)", lines)


@pytest.mark.slow
def test_the_export_target_builds_on_a_finished_demo_without_rerunning_it(demo_run):
    """`make export`'s target after `make demo`'s all.csv: one export_model job per exportable category x method
    and the table, nothing upstream (a dry run)."""
    from workflow_helpers import dry_run

    jobs, _ = dry_run(demo_run, "results/demo/exports/exports.csv")
    assert sorted(jobs) == ["export_model"] * 6 + ["export_table"], jobs


def test_an_exported_model_places_the_folders_operating_points(model_dir, exported, tmp_path):  # noqa: F811
    """--threshold fpr:<rate> on the file alone is the model folder's operating_points.csv threshold, bit for bit
    (both from the same validation normals), also at a rate the folder's table does not list."""
    from anomalyflow.thresholds import false_alarm_thresholds, read_operating_point, write_operating_points

    folder, _ = model_dir
    points = tmp_path / "folder"
    points.mkdir()
    write_operating_points(folder / "scores.csv", points / "operating_points.csv", [0.0, 0.1, 0.5])
    model = ExportedModel(exported, "cpu")
    for rate in (0.0, 0.1, 0.5):
        assert model.threshold(f"fpr:{rate}", 0.99) == read_operating_point(points, rate)
    scores = read_scores(folder / "scores.csv")
    normals = scores.loc[scores["split"] == "validation", "score"]
    assert model.threshold("fpr:0.25", 0.99) == false_alarm_thresholds(normals, [0.25])[0]
    for bad in ("fpr:x", "fpr:1.5"):
        with pytest.raises(DataError, match="fpr"):
            model.threshold(bad, 0.99)


def test_an_exported_puad_gives_the_librarys_fused_score_and_maps(puad_folder, tmp_path):  # noqa: F811
    """A tiny PUAD in ONNX: the fused score, both parts, the logical map and the fused map of its images equal
    the library's (:meth:`anomalyflow.puad.PUAD.predict`), so the demo-level parity does not rest on one demo."""
    from anomalyflow.data.table import read_samples
    from anomalyflow.puad import PUAD
    from anomalyflow.scoring import score_paths

    root, samples = puad_folder
    torch.set_num_threads(1)
    paths = read_samples(samples)["path"].tolist()
    scores, maps, extras = score_paths(PUAD.load(root / "puad_s", "cpu"), paths, batch_size=4, desc=None)
    path = export_model(root / "puad_s", tmp_path / "puad.onnx")
    got, got_maps, got_extras = ExportedModel(path, "cpu").score_paths(paths, batch_size=3)
    assert_scores_equal(got, scores, "fused score")
    for name in ("score_efficientad", "score_mahalanobis"):
        assert_scores_equal(got_extras[name], extras[name], name)
    scale = max(1.0, float(np.ptp(extras["logical"])))
    assert float(np.abs(got_extras["logical"] - extras["logical"]).max()) < MAP_ATOL * scale
    assert float(np.abs(got_maps - maps).max()) < MAP_ATOL


def test_export_parity_measures_the_file_against_its_folder(model_dir, exported, tmp_path):  # noqa: F811
    """What the export job records: every image of the folder's scores.csv through the file, within the
    tolerances; a folder whose scores differ (as after fp16 scoring on a GPU) is reported, not hidden."""
    import shutil

    from anomalyflow.export.parity import export_parity

    folder, _ = model_dir
    parity = export_parity(exported, folder, batch_size=4, threads=1)
    assert parity["images"] == len(read_scores(folder / "scores.csv")) and parity["within_tolerance"]
    assert parity["max_map_difference"] < MAP_ATOL and parity["max_relative_score_difference"] < SCORE_RTOL
    changed = shutil.copytree(folder, tmp_path / "changed")
    table = pd.read_csv(changed / "scores.csv")
    table.loc[0, "score"] *= 1.01
    table.to_csv(changed / "scores.csv", index=False)
    parity = export_parity(exported, changed, batch_size=4, threads=1)
    assert not parity["within_tolerance"] and parity["max_relative_score_difference"] == pytest.approx(0.01 / 1.01,
                                                                                                       rel=1e-3)
