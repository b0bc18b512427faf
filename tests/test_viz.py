"""The report's figures (anomalyflow.viz) on a tiny hand-made category: no workflow, no network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anomalyflow.data.table import make_table, write_samples
from anomalyflow.errors import DataError
from anomalyflow.metrics import image_auroc
from anomalyflow.outputs import scores_table, write_maps, write_scores
from anomalyflow.viz import (
    metrics_table_html,
    pick_examples,
    roc_points,
    summary_figure,
    write_category_figures,
    write_summary_figure,
)


@pytest.fixture
def category(tmp_path):
    """4 good and 4 anomalous (2 logical, 2 structural) test images with masks, scores, maps and metrics."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)
        kind = "none" if i < 4 else ("logical" if i % 2 else "structural")
        masks = []
        if kind != "none":
            mask = np.zeros((24, 24), np.uint8)
            mask[4:10, 4:10] = 255
            Image.fromarray(mask).save(tmp_path / f"img{i}_mask.png")
            masks = [str(tmp_path / f"img{i}_mask.png")]
        rows.append(dict(dataset="d", category="c", path=str(path), split="test", label=int(kind != "none"),
                         defect_type="good" if kind == "none" else f"{kind}_anomalies", anomaly_kind=kind,
                         mask_paths=masks))
    table = make_table(rows)
    write_samples(table, tmp_path / "samples.csv")
    files = {}
    for method, offset in (("a", 1.0), ("b", 0.2)):
        scores = table["label"].to_numpy() * offset + rng.random(len(table))
        folder = tmp_path / method
        write_scores(folder / "scores.csv", scores_table(table, scores))
        write_maps(folder / "maps.npz", table["path"], rng.random((len(table), 12, 12)))
        pd.DataFrame([dict(dataset="d", category="c", method=method, image_auroc=image_auroc(table["label"], scores),
                           pixel_auroc=0.5 + offset / 4, aupro=np.nan)]).to_csv(folder / "metrics.csv", index=False)
        files[method] = folder
    return tmp_path, table, files


def test_roc_points_area_is_the_image_auroc():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(labels, 1.0), 1)  # rounded: many ties
    fpr, tpr = roc_points(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(image_auroc(labels, scores), abs=1e-12)


def test_examples_cover_every_defect_type_before_repeating_one(category):
    _, table, _ = category
    picked = pick_examples(table, 3)
    assert list(picked["defect_type"]) == ["logical_anomalies", "structural_anomalies", "good"]
    assert len(pick_examples(table, 100)) == len(table)


def test_metric_table_marks_the_best_method(category):
    _, _, files = category
    metrics = pd.concat([pd.read_csv(files[m] / "metrics.csv") for m in ("a", "b")])
    page = metrics_table_html(metrics, title="c")
    assert "<th>image_auroc</th>" in page and "<th>pixel_auroc</th>" in page
    assert "aupro" not in page  # all empty: no column
    assert "<td><b>75.00</b></td>" in page  # a's pixel AUROC, the better one


def test_category_figures_are_written_and_reproducible(category, tmp_path):
    root, _, files = category
    out = tmp_path / "figures"

    def write(suffix: str) -> None:
        write_category_figures(
            root / "samples.csv", {m: f / "scores.csv" for m, f in files.items()},
            {"a": files["a"] / "maps.npz", "b": files["b"] / "maps.npz", "c": files["a"] / "maps.npz"},
            [f / "metrics.csv" for f in files.values()],
            table=out / f"metrics{suffix}.html", roc=out / f"roc{suffix}.svg", grid=out / f"maps{suffix}.png")

    write("")
    write("2")
    svg = (out / "roc.svg").read_text()
    assert svg.startswith("<?xml") and "logical vs good" in svg and "structural vs good" in svg
    assert (out / "roc.svg").read_bytes() == (out / "roc2.svg").read_bytes()  # no timestamps, fixed ids
    with Image.open(out / "maps.png") as grid:
        pixels = np.asarray(grid.convert("L"), dtype=float)
    assert pixels.std() > 10  # not blank
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_summary_figure_has_a_bar_per_method_and_group(category, tmp_path):
    _, _, files = category
    metrics = pd.concat([pd.read_csv(files[m] / "metrics.csv") for m in ("a", "b")])
    figure = summary_figure(metrics)
    # image AUROC and pixel AUROC panels (AUPRO is empty); 2 methods x (1 category + mean) bars each
    assert len(figure.axes) == 2
    assert all(len(axis.patches) == 4 for axis in figure.axes)
    write_summary_figure([files["a"] / "metrics.csv"], tmp_path / "s.svg")
    assert (tmp_path / "s.svg").stat().st_size > 1000


def test_a_missing_score_is_a_data_error(category, tmp_path):
    root, table, files = category
    write_scores(files["b"] / "scores.csv", scores_table(table.iloc[:3], np.zeros(3)))
    with pytest.raises(DataError, match="no score for test image"):
        write_category_figures(root / "samples.csv", {m: f / "scores.csv" for m, f in files.items()}, {},
                               [files["a"] / "metrics.csv"], table=tmp_path / "t.html", roc=tmp_path / "r.svg",
                               grid=tmp_path / "g.png")


def test_an_extra_map_gets_a_column_of_its_own(category):
    """PUAD's maps.npz holds its fused map and a ``logical`` layer: the grid shows both, the layer from 0."""
    from anomalyflow.viz import map_grid_figure

    root, table, files = category
    layered = root / "layered" / "maps.npz"
    logical = np.random.default_rng(1).normal(size=(len(table), 6, 6))  # signed, as PUAD's terms are
    write_maps(layered, table["path"], np.random.default_rng(2).random((len(table), 12, 12)), logical=logical)
    figure = map_grid_figure(root / "samples.csv", {"a": files["a"] / "maps.npz", "puad": layered}, n_images=3)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titles == ["image", "ground truth", "a", "puad", "puad: logical"]
    assert len(figure.axes) == 3 * 5
    logical_image = figure.axes[4].get_images()[-1]
    assert logical_image.get_clim()[0] == 0.0  # negative terms are drawn like zero
