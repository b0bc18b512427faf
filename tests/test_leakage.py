"""The leakage guard: no statistic ever sees a test image.

Two layers. Every function that computes a statistic from rows it is handed (quantiles, z-scores,
ensemble normalisation, thresholds) refuses test rows with :class:`LeakageError` — each is handed test
rows below. And every fitting stage, run end to end on a tiny category, never even decodes a test image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from efficientad_helpers import make_category

from anomalyflow.data import images as images_module
from anomalyflow.data.table import fit_rows, normal_statistics, read_samples, require_no_test
from anomalyflow.efficientad.quantiles import map_quantiles, validation_quantiles
from anomalyflow.efficientad.train import train_efficientad
from anomalyflow.ensemble import ensemble_category, map_statistics
from anomalyflow.errors import LeakageError
from anomalyflow.nets.pdn import pdn_small
from anomalyflow.patchcore import fit_patchcore
from anomalyflow.puad import fit_puad, zscore_statistics
from anomalyflow.thresholds import quantile_threshold

SIDE = 64
ROWS = pd.DataFrame({"path": ["v0.png", "v1.png", "t0.png"], "split": ["validation", "validation", "test"],
                     "label": [0, 0, 1]})
VALUES = np.array([1.0, 2.0, 30.0])
MAPS = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)

# Each statistic, handed rows that include a test image.
STATISTICS = {
    "fit_rows(test split)": lambda: fit_rows(ROWS, ["validation", "test"], purpose="anything"),
    "require_no_test": lambda: require_no_test(ROWS, purpose="anything"),
    "require_no_test(no split column)": lambda: require_no_test(ROWS.drop(columns="split"), purpose="anything"),
    "normal_statistics": lambda: normal_statistics(VALUES, ROWS, purpose="anything"),
    "PUAD z-scores": lambda: zscore_statistics(VALUES, ROWS, purpose="PUAD z-score"),
    "EfficientAD map quantiles": lambda: map_quantiles(None, ROWS),
    "ensemble normalisation (validation)": lambda: map_statistics(MAPS, ROWS, "validation"),
    "ensemble normalisation (validation_minmax)": lambda: map_statistics(MAPS, ROWS, "validation_minmax"),
}


@pytest.mark.parametrize("name", list(STATISTICS))
def test_every_statistic_refuses_test_rows(name):
    with pytest.raises(LeakageError) as error:
        STATISTICS[name]()
    assert "\n" not in str(error.value)


def test_the_same_statistics_accept_validation_rows():
    validation = ROWS.iloc[:2]
    assert normal_statistics(VALUES[:2], validation, purpose="x") == (1.5, 0.5)
    assert zscore_statistics(VALUES[:2], validation, purpose="x") == (1.5, 0.5)
    assert map_statistics(MAPS[:2], validation, "validation_minmax") == (0.0, 31.0)
    with pytest.raises(ValueError, match="2 rows but values of shape"):
        normal_statistics(VALUES, validation, purpose="x")


def test_threshold_reads_validation_normals_only():
    scores = ROWS.assign(score=VALUES)
    assert quantile_threshold(scores, 0.5) == 1.5  # the test image's 30 is not among them


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """Every image path decoded from now on (all image reads go through ``load_image``)."""
    seen: list[str] = []
    load_image = images_module.load_image

    def spy(path):
        seen.append(str(path))
        return load_image(path)

    monkeypatch.setattr(images_module, "load_image", spy)
    return seen


@pytest.mark.slow  # trains (two iterations) and fits every stage
def test_fitting_stages_never_decode_a_test_image(tmp_path, decoded):
    samples = make_category(tmp_path / "data", n_train=4, n_val=2, n_test=2, side=SIDE)
    table = read_samples(samples)
    test_paths = set(table.loc[table["split"] == "test", "path"])
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pt"
    torch.save(pdn_small(padding=True).state_dict(), teacher)

    stages = {
        "PatchCore": lambda: fit_patchcore(samples, tmp_path / "patchcore", {
            "backbone": "resnet18", "image_size": SIDE, "embed_dim": 32, "weights": "none"}, device="cpu"),
        "EfficientAD training": lambda: train_efficientad(samples, teacher, tmp_path / "efficientad",
                                                          {"iterations": 2, "image_size": SIDE}, device="cpu"),
        "EfficientAD quantiles": lambda: validation_quantiles(tmp_path / "efficientad", samples,
                                                              tmp_path / "efficientad" / "quantiles.json",
                                                              device="cpu"),
        "PUAD Gaussian and z-scores": lambda: fit_puad(samples, tmp_path / "efficientad", tmp_path / "puad",
                                                       {"batch_size": 4}, device="cpu"),
    }
    for name, stage in stages.items():
        decoded.clear()
        stage()
        assert decoded, name
        assert not test_paths & set(decoded), name
        assert set(decoded) <= set(table.loc[table["split"] != "test", "path"]), name


def test_ensemble_statistics_ignore_the_test_maps(tmp_path):
    """Shift every test map and score: the ensemble's normalisation and z-score statistics stay the same."""
    from test_ensemble import _members

    found = []
    for offset in (0.0, 1000.0):
        folder = tmp_path / f"offset{offset:g}"
        folder.mkdir()
        members = _members(folder, test_offset=offset)
        ensemble_category(folder / "samples.csv", members, folder / "s.csv", folder / "m.npz", folder / "e.json",
                          {"image_score": "mean_zscore"})
        model = json.loads(Path(folder / "e.json").read_text())
        found.append((model["statistics"], model["score_statistics"]))
    assert found[0] == found[1]
