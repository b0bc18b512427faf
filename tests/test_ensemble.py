import json

import numpy as np
import pytest
import torch

from anomalyflow.data.table import make_table, write_samples
from anomalyflow.ensemble import ensemble_category, map_statistics
from anomalyflow.errors import ConfigError, LeakageError
from anomalyflow.frames import crop_to_frame
from anomalyflow.outputs import read_maps, scores_table, write_maps, write_scores


def _members(tmp_path, test_offset=0.0):
    rows = [dict(dataset="d", category="c", path=f"v{i}.png", split="validation", label=0, defect_type="good",
                 anomaly_kind="none", mask_paths=[]) for i in range(3)]
    rows += [dict(dataset="d", category="c", path=f"t{i}.png", split="test", label=int(i > 1),
                  defect_type="bad" if i > 1 else "good", anomaly_kind="structural" if i > 1 else "none",
                  mask_paths=[]) for i in range(4)]
    table = make_table(rows)
    write_samples(table, tmp_path / "samples.csv")
    scored = table.loc[table["split"] != "train"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    members = []
    for m, scale in (("a", 1.0), ("b", 100.0)):
        maps = rng.random((len(scored), 8, 8)) * scale
        maps[(scored["split"] == "test").to_numpy()] += test_offset
        write_maps(tmp_path / f"{m}.npz", scored["path"].tolist(), maps)
        write_scores(tmp_path / f"{m}.csv", scores_table(scored, maps.reshape(len(scored), -1).max(1)))
        members.append((m, str(tmp_path / f"{m}.csv"), str(tmp_path / f"{m}.npz")))
    return members


def test_normalisation_uses_validation_maps_only(tmp_path):
    members = _members(tmp_path)
    ensemble_category(tmp_path / "samples.csv", members, tmp_path / "s.csv", tmp_path / "m.npz", tmp_path / "e.json")
    first = json.loads((tmp_path / "e.json").read_text())["statistics"]
    maps_before = read_maps(tmp_path / "m.npz")[0]
    # Shifting every test map changes nothing in the statistics: they never saw a test pixel.
    (tmp_path / "shifted").mkdir()
    members = _members(tmp_path / "shifted", test_offset=50.0)
    ensemble_category(tmp_path / "shifted" / "samples.csv", members, tmp_path / "s2.csv", tmp_path / "m2.npz",
                      tmp_path / "e2.json")
    assert json.loads((tmp_path / "e2.json").read_text())["statistics"] == first
    after, paths, _ = read_maps(tmp_path / "m2.npz")
    validation = np.array([p.startswith("v") for p in paths])
    np.testing.assert_allclose(after[validation], maps_before[validation], rtol=1e-6)


def test_members_on_different_scales_contribute_equally(tmp_path):
    members = _members(tmp_path)
    ensemble_category(tmp_path / "samples.csv", members, tmp_path / "s.csv", tmp_path / "m.npz", tmp_path / "e.json")
    stats = json.loads((tmp_path / "e.json").read_text())["statistics"]
    assert stats["b"]["scale"] == pytest.approx(100 * stats["a"]["scale"], rel=0.3)


def test_official_test_minmax_is_explicit_and_guarded_statistics_refuse_test_rows(tmp_path):
    members = _members(tmp_path)
    ensemble_category(tmp_path / "samples.csv", members, tmp_path / "s.csv", tmp_path / "m.npz", tmp_path / "e.json",
                      {"normalization": "test_minmax", "image_score": "top_mean"})
    import pandas as pd

    with pytest.raises(LeakageError):
        map_statistics(np.ones((2, 2, 2)) * [[[0, 1]]], pd.DataFrame({"path": ["x"], "split": ["test"]}), "validation")
    with pytest.raises(ConfigError, match="at least two"):
        ensemble_category(tmp_path / "samples.csv", members[:1], tmp_path / "s.csv", tmp_path / "m.npz",
                          tmp_path / "e.json")


def test_frames_crop_to_the_smallest():
    maps = torch.arange(100.0).reshape(1, 10, 10)
    inner = crop_to_frame(maps, (0, 0, 1, 1), (0.2, 0.2, 0.6, 0.6))
    assert inner.shape == (1, 10, 10)
    assert inner.min() >= maps[0, 2, 2] - 1e-4 and inner.max() <= maps[0, 7, 7] + 1e-4
    with pytest.raises(ConfigError, match="smallest crop first"):
        crop_to_frame(maps, (0.2, 0.2, 0.6, 0.6), (0, 0, 1, 1))
