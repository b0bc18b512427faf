import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anomalyflow.data.table import make_table, write_samples
from anomalyflow.errors import DataError
from anomalyflow.evaluate import _fit_mask, evaluate_category
from anomalyflow.metrics import aupro, image_auroc, pixel_auroc
from anomalyflow.outputs import scores_table, write_maps, write_scores
from anomalyflow.results_table import results_table


def _category(tmp_path, n_good=4, n_bad=4, size=32, logical=True):
    rng = np.random.default_rng(0)
    rows, maps, masks = [], [], []
    for i in range(n_good + n_bad):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(path)
        mask = np.zeros((size, size), bool)
        mask_paths = []
        if i >= n_good:
            y, x = rng.integers(2, size - 10, 2)
            mask[y:y + 6, x:x + 6] = True
            mask_file = tmp_path / f"img{i}_mask.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file)
            mask_paths = [str(mask_file)]
        kind = "none" if i < n_good else ("logical" if logical and i % 2 else "structural")
        rows.append(dict(dataset="d", category="c", path=str(path), split="test", label=int(i >= n_good),
                         defect_type="good" if i < n_good else f"{kind}_anomalies", anomaly_kind=kind,
                         mask_paths=mask_paths))
        maps.append(rng.random((size, size)) + 2.0 * mask)
        masks.append(mask)
    rows.append(dict(dataset="d", category="c", path=str(tmp_path / "val.png"), split="validation", label=0,
                     defect_type="good", anomaly_kind="none", mask_paths=[]))
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(tmp_path / "val.png")
    table = make_table(rows)
    write_samples(table, tmp_path / "samples.csv")
    scored = table.loc[table["split"] == "test"].reset_index(drop=True)
    order = [int(p.rsplit("img", 1)[1].split(".")[0]) for p in scored["path"]]
    scores = np.array([maps[i].max() for i in order])
    write_scores(tmp_path / "scores.csv", scores_table(scored, scores))
    write_maps(tmp_path / "maps.npz", scored["path"].tolist(), np.stack([maps[i] for i in order]))
    return scored, scores, np.stack([masks[i] for i in order]), np.stack([maps[i] for i in order])


def test_metrics_row_matches_the_metric_functions(tmp_path):
    test, scores, masks, maps = _category(tmp_path)
    row = evaluate_category(tmp_path / "samples.csv", tmp_path / "scores.csv", tmp_path / "maps.npz",
                            method="m", size=32).iloc[0]
    assert row["image_auroc"] == pytest.approx(image_auroc(test["label"], scores))
    assert row["pixel_auroc"] == pytest.approx(pixel_auroc(masks, maps.astype(np.float32)))
    assert row["aupro"] == pytest.approx(aupro(masks, maps.astype(np.float32)))
    assert {"image_auroc_logical", "image_auroc_structural", "image_auroc_lo_st_mean"} <= set(row.index)
    assert row["n_test_good"] == 4 and row["n_test_anomalous"] == 4


def test_missing_score_names_the_image(tmp_path):
    _category(tmp_path)
    scores = pd.read_csv(tmp_path / "scores.csv").iloc[1:]
    scores.to_csv(tmp_path / "scores.csv", index=False)
    with pytest.raises(DataError, match="no score for test image"):
        evaluate_category(tmp_path / "samples.csv", tmp_path / "scores.csv", tmp_path / "maps.npz", method="m")


def test_tiny_regions_survive_downsizing():
    mask = np.zeros((1024, 1024), bool)
    mask[100:200, 100:200] = True
    mask[500:502, 300:302] = True  # 4 pixels: nearest-neighbour to 256² would drop it
    small = _fit_mask(mask, (0, 0, 1, 1), 256, "m.png")
    from scipy import ndimage

    assert ndimage.label(small, structure=np.ones((3, 3)))[1] == 2
    assert small[25:50, 25:50].all()


def test_results_table_adds_a_mean_row_per_method(tmp_path):
    paths = []
    for category, value in (("a", 0.6), ("b", 0.8)):
        for method in ("m1", "m2"):
            path = tmp_path / f"{category}_{method}.csv"
            pd.DataFrame([dict(dataset="d", category=category, method=method, n_test_good=3,
                               image_auroc=value + (method == "m2") * 0.1)]).to_csv(path, index=False)
            paths.append(path)
    table = results_table(paths)
    assert table["category"].tolist() == ["a", "b", "mean", "a", "b", "mean"]
    means = table.loc[table["category"] == "mean"].set_index("method")["image_auroc"]
    assert means["m1"] == pytest.approx(0.7) and means["m2"] == pytest.approx(0.8)
    json.dumps(table.to_dict())  # plain values


def test_results_table_names_what_each_row_rests_on(tmp_path):
    paths = []
    for category in ("a", "b"):
        path = tmp_path / f"{category}.csv"
        pd.DataFrame([dict(dataset="d", category=category, method="m", image_auroc=0.5)]).to_csv(path, index=False)
        paths.append(path)
    same = [dict(category=c, method="m", provenance="teacher imagenet (s): file t.pth") for c in ("a", "b")]
    table = results_table(paths, same)
    assert table["provenance"].tolist() == ["teacher imagenet (s): file t.pth"] * 3
    differs = [dict(same[0]), dict(same[1], provenance="teacher other (s): file u.pth")]
    mean = results_table(paths, differs).set_index("category").loc["mean", "provenance"]
    assert mean == "teacher imagenet (s): file t.pth | teacher other (s): file u.pth"


@pytest.mark.parametrize("threshold, relative, expected", [(0.5, True, 1.0), (1.0, True, 0.5), (20.0, False, 1.0)])
def test_saturation_follows_the_defect_to_any_evaluation_size(tmp_path, threshold, relative, expected):
    """A map that lights up exactly half of each defect, above every defect-free pixel: saturated (sPRO 1)
    when half the defect saturates it, 0.5 when the whole defect must be covered, at the masks' own size
    and at 8². Saturation areas are taken at the masks' resolution and scaled to the grid with the defect;
    a relative threshold of 0.5 once stayed in full-resolution pixels and then was capped at the grid
    area, so it counted as 1.0 (found while writing docs/methods.md, D4)."""
    rows, maps = [], []
    for i in range(4):
        path, mask = tmp_path / f"img{i}.png", np.zeros((64, 64), np.uint8)
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
        mask_paths = []
        if i >= 2:  # blocks on the 8-pixel grid: exact at 64² and at 8²
            mask[8 * i:8 * i + 16, 16:32] = 255
            Image.fromarray(mask).save(tmp_path / f"img{i}_mask.png")
            mask_paths = [str(tmp_path / f"img{i}_mask.png")]
        rows.append(dict(dataset="d", category="c", path=str(path), split="test", label=int(i >= 2),
                         defect_type="good" if i < 2 else "structural_anomalies",
                         anomaly_kind="none" if i < 2 else "structural", mask_paths=mask_paths))
        amap = np.full((64, 64), 0.1 * i, np.float32)
        if i >= 2:
            amap[8 * i:8 * i + 8, 16:32] = 1.0  # the defect's first half
            amap[8 * i + 8:8 * i + 16, 16:32] = -1.0  # its second half: below every defect-free pixel
        maps.append(amap)
    table = make_table(rows)
    write_samples(table, tmp_path / "samples.csv")
    write_scores(tmp_path / "scores.csv", scores_table(table, np.array([m.max() for m in maps])))
    write_maps(tmp_path / "maps.npz", table["path"].tolist(), np.stack(maps))
    config = tmp_path / "defects_config.json"
    config.write_text(json.dumps([{"defect_name": "d", "pixel_value": 255, "saturation_threshold": threshold,
                                   "relative_saturation": relative}]))
    for size in (64, 8):
        row = evaluate_category(tmp_path / "samples.csv", tmp_path / "scores.csv", tmp_path / "maps.npz",
                                method="m", size=size, defects_config=config).iloc[0]
        for limit in (0.01, 0.05, 0.1, 0.3):
            assert row[f"auc_spro_{limit:g}"] == pytest.approx(expected), (size, limit)
