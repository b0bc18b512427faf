"""Operating points from validation normals (anomalyflow.thresholds), on hand-made score sets whose thresholds and
counts are worked out by hand: ties, a rate below 1/n, rate 0, and the one convention (score >= threshold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalyflow.errors import ConfigError, DataError
from anomalyflow.predict import resolve_threshold
from anomalyflow.thresholds import (
    OPERATING_POINT_COLUMNS,
    false_alarm_thresholds,
    flagged_counts,
    is_anomalous,
    operating_points,
    read_operating_point,
    write_operating_points,
)

UP = np.inf  # np.nextafter(x, UP): the next float64 above x


def _scores(validation, test_good, test_anomalous) -> pd.DataFrame:
    """A scores.csv table: validation normals, then good and anomalous test images."""
    splits = ["validation"] * len(validation) + ["test"] * (len(test_good) + len(test_anomalous))
    labels = [0] * (len(validation) + len(test_good)) + [1] * len(test_anomalous)
    values = [*validation, *test_good, *test_anomalous]
    return pd.DataFrame({"path": [f"img{i}.png" for i in range(len(values))], "split": splits,
                         "defect_type": ["good" if label == 0 else "scratch" for label in labels], "label": labels,
                         "anomaly_kind": ["none" if label == 0 else "structural" for label in labels],
                         "score": np.asarray(values, dtype=np.float64)})


def test_thresholds_of_ten_distinct_normals():
    normals = np.arange(1.0, 11.0)  # 1 .. 10
    # a = 0 and a = 0.05 < 1/10: no normal may be flagged, so just above the largest (10); a = 0.1: one (10) may,
    # so just above 9; a = 0.2 and a = 0.25: two (floor(2.5) = 2), just above 8.
    got = false_alarm_thresholds(normals, [0, 0.05, 0.1, 0.2, 0.25])
    expected = np.nextafter([10.0, 10.0, 9.0, 8.0, 8.0], UP)
    assert got.tolist() == expected.tolist()
    assert flagged_counts(normals, got).tolist() == [0, 0, 1, 2, 2]
    # the smallest such threshold: the score it sits above is flagged, which would exceed the rate
    assert flagged_counts(normals, [10.0, 9.0, 8.0]).tolist() == [1, 2, 3]


def test_tied_normals_are_flagged_together():
    normals = [1.0, 2.0, 3.0, 3.0, 3.0, 4.0]
    # a = 0.5 allows 3 of 6, but threshold 3 would flag 4 (the three 3s and the 4): the smallest threshold with at
    # most 3 is just above 3, flagging only the 4 (1/6, below the rate asked).
    assert false_alarm_thresholds(normals, [0.5]).tolist() == [np.nextafter(3.0, UP)]
    assert false_alarm_thresholds(normals, [4 / 6]).tolist() == [np.nextafter(2.0, UP)]
    points = operating_points(_scores(normals, [], []), [0, 0.5, 4 / 6])
    assert points["validation_false_alarms"].tolist() == [0, 1, 4]
    assert points["validation_false_alarm_rate"].tolist() == pytest.approx([0, 1 / 6, 4 / 6])


def test_all_normals_tied():
    assert false_alarm_thresholds([2.5] * 4, [0, 0.5, 0.9]).tolist() == [np.nextafter(2.5, UP)] * 3


def test_a_rate_times_n_just_below_a_whole_number_in_floating_point():
    normals = np.arange(1.0, 101.0)
    assert 0.29 * 100 < 29  # 28.999999999999996: a plain floor would allow 28 false alarms
    threshold = false_alarm_thresholds(normals, [0.29])
    assert threshold.tolist() == [np.nextafter(71.0, UP)] and flagged_counts(normals, threshold).tolist() == [29]


def test_score_equal_to_the_threshold_is_anomalous():
    assert is_anomalous([0.5, 1.0, 1.5], 1.0).tolist() == [False, True, True]
    assert flagged_counts([0.5, 1.0, 1.5], [1.0, np.nextafter(1.0, UP)]).tolist() == [2, 1]


def test_test_counts_at_each_operating_point():
    normals = np.arange(1.0, 11.0)
    # good test images: 0.5 and 9.5 and 10 (= the largest normal) and 11; anomalous: 3, 10, 10.5, 20
    table = operating_points(_scores(normals, [0.5, 9.5, 10.0, 11.0], [3.0, 10.0, 10.5, 20.0]), [0, 0.1, 0.5])
    assert list(table.columns) == OPERATING_POINT_COLUMNS
    assert table["false_alarm_rate"].tolist() == [0, 0.1, 0.5]
    # fpr 0: above 10, so the 10s pass; fpr 0.1: above 9; fpr 0.5: above 5
    assert table[["tp", "fp", "fn", "tn"]].to_numpy().tolist() == [[2, 1, 2, 3], [3, 3, 1, 1], [3, 3, 1, 1]]
    assert table["recall"].tolist() == [0.5, 0.75, 0.75]
    assert table["test_false_alarm_rate"].tolist() == [0.25, 0.75, 0.75]
    assert table["validation_normals"].tolist() == [10] * 3
    assert table["validation_false_alarms"].tolist() == [0, 1, 5]


def test_a_test_score_equal_to_a_normal_score_counts_like_the_roc_curve():
    """At the threshold just above a normal score s, a test image scoring s passes; one scoring the threshold
    itself is flagged (score >= threshold), the ROC curve's count at that score."""
    from anomalyflow.viz import roc_points

    normals = [1.0, 2.0, 3.0, 4.0]
    threshold = np.nextafter(3.0, UP)
    table = operating_points(_scores(normals, [3.0, threshold], [threshold, 3.0]), [0.25])
    assert table["threshold"].tolist() == [threshold]
    assert table[["tp", "fp", "fn", "tn"]].to_numpy().tolist() == [[1, 1, 1, 1]]
    fpr, tpr = roc_points(np.array([0, 0, 1, 1]), np.array([3.0, threshold, threshold, 3.0]))
    assert (fpr[1], tpr[1]) == (0.5, 0.5)  # the curve's point at this threshold: the same counts


def test_only_validation_normals_place_the_threshold():
    scores = _scores([1.0, 2.0, 3.0, 4.0], [100.0, 200.0], [300.0])
    scores.loc[len(scores)] = ["val_bad.png", "validation", "scratch", 1, "structural", 50.0]  # not a normal
    assert operating_points(scores, [0])["threshold"].tolist() == [np.nextafter(4.0, UP)]


def test_against_a_brute_force_search_over_every_candidate():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 40, 333):
        normals = rng.integers(0, max(n // 3, 2), n).astype(np.float64)  # many ties
        rates = [r for r in (0, 0.5 / n, 1 / n, 0.01, 0.1, 0.37, 0.5, 0.99) if r < 1]
        got = false_alarm_thresholds(normals, rates)
        # candidates: each normal score and the next float above it; the smallest with a rate <= a
        candidates = np.sort(np.r_[normals, np.nextafter(normals, UP)])
        counts = (normals[None, :] >= candidates[:, None]).sum(1)
        for rate, threshold in zip(rates, got, strict=True):
            allowed = counts <= np.floor(round(rate * n, 9))
            assert threshold == candidates[np.argmax(allowed)], (n, rate)


@pytest.mark.parametrize("rates", [[1.0], [-0.01], ["0.1"], [True], []])
def test_bad_rates_stop_with_one_line(rates):
    with pytest.raises(ConfigError, match="evaluation false_alarm_rates"):
        false_alarm_thresholds([1.0, 2.0], rates)


def test_no_validation_normals_is_a_data_error():
    with pytest.raises(DataError, match="no good images in the validation split"):
        operating_points(_scores([], [1.0], [2.0]), [0.01])


def _model_folder(tmp_path, rates=(0, 0.01, 0.05)):
    folder = tmp_path / "patchcore"
    folder.mkdir()
    normals = np.linspace(0.1, 1.0, 200) / 3  # thresholds that need every digit to read back exactly
    table = write_operating_points_from(normals, folder, rates)
    return folder, table


def write_operating_points_from(normals, folder, rates):
    scores = folder / "scores.csv"
    _scores(normals, [0.2], [0.4]).to_csv(scores, index=False, float_format="%.17g")
    return write_operating_points(scores, folder / "operating_points.csv", rates)


def test_thresholds_read_back_as_the_same_floats(tmp_path):
    folder, table = _model_folder(tmp_path)
    for rate, threshold in zip(table["false_alarm_rate"], table["threshold"], strict=True):
        assert read_operating_point(folder, rate) == threshold
    assert pd.read_csv(folder / "operating_points.csv")["false_alarm_rate"].tolist() == [0, 0.01, 0.05]


def test_predict_threshold_specs(tmp_path):
    folder, table = _model_folder(tmp_path)
    assert resolve_threshold(folder, "fpr:0.01", 0.99) == table["threshold"].iloc[1]
    assert resolve_threshold(folder, "fpr:0", 0.99) == table["threshold"].iloc[0]
    assert resolve_threshold(folder, "0.25", 0.99) == 0.25
    assert resolve_threshold(folder, "none", 0.99) is None
    with pytest.raises(DataError, match=r"no operating point at false-alarm rate 0.1 \(it has fpr:0, fpr:0.01, "
                                        r"fpr:0.05\); add the rate to evaluation.false_alarm_rates"):
        resolve_threshold(folder, "fpr:0.1", 0.99)
    with pytest.raises(DataError, match=r"'fpr:one' is not fpr:<rate>, e.g. fpr:0.01"):
        resolve_threshold(folder, "fpr:one", 0.99)
    with pytest.raises(DataError, match=r"'fpr0.01' is not none, quantile, f1, fpr:<rate> or a number"):
        resolve_threshold(folder, "fpr0.01", 0.99)
    (folder / "operating_points.csv").unlink()
    with pytest.raises(DataError, match=r"operating_points.csv: no operating points for this model folder; build "
                                        r"them with `snakemake .*operating_points.csv`"):
        resolve_threshold(folder, "fpr:0.01", 0.99)


def test_the_cli_says_one_line_for_a_folder_without_operating_points(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    folder = tmp_path / "patchcore"
    folder.mkdir()
    (folder / "model.json").write_text('{"family": "patchcore"}')
    Image.new("RGB", (8, 8)).save(tmp_path / "part.png")
    result = subprocess.run([sys.executable, "-m", "anomalyflow", "predict", "--model", str(folder), "--images",
                             str(tmp_path / "part.png"), "--out", str(tmp_path / "out"), "--threshold", "fpr:0.01"],
                            capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "operating_points.csv: no operating points for this model folder" in lines[0], lines


def test_the_report_table_lists_every_method_and_rate(tmp_path):
    from anomalyflow.viz import operating_points_table_html

    folder, _ = _model_folder(tmp_path)
    page = operating_points_table_html({"patchcore": folder / "operating_points.csv"}, title="tray")
    assert page.count("<tr>") == 1 + 3 and "fpr:0.01" in page and "tray: operating points" in page
    assert "1/1 (100 %)" in page  # the anomalous test image (0.4) is above every threshold (at most 1/3)


@pytest.mark.slow
def test_the_demo_run_has_operating_points_for_every_method(demo_run):
    """results/demo/<category>/<method>/operating_points.csv for every category and method of the demo config,
    at the configured rates, each threshold the smallest one of its rate on the method's validation normals and
    its counts those of the test scores at or above it."""
    from anomalyflow.config import false_alarm_rates
    from anomalyflow.readers import load_yaml
    from anomalyflow.validation import validate_config

    config = validate_config(load_yaml(demo_run / "config" / "config.yaml"))
    spec = config["datasets"]["demo"]
    rates = false_alarm_rates(config, "demo")
    for category in spec["categories"]:
        for method in spec["methods"]:
            folder = demo_run / "results" / "demo" / category / method
            table = pd.read_csv(folder / "operating_points.csv")
            scores = pd.read_csv(folder / "scores.csv")
            normals = scores.loc[(scores["split"] == "validation") & (scores["label"] == 0), "score"].to_numpy()
            test = scores.loc[scores["split"] == "test"]
            assert table["false_alarm_rate"].tolist() == rates, folder
            assert table["threshold"].tolist() == false_alarm_thresholds(normals, rates).tolist(), folder
            assert (table["validation_false_alarm_rate"] <= table["false_alarm_rate"]).all(), folder
            for row in table.itertuples():
                flagged = test["score"].to_numpy() >= row.threshold
                assert (row.tp, row.fp) == (int(flagged[test["label"] == 1].sum()),
                                            int(flagged[test["label"] == 0].sum())), (folder, row)
                assert row.tp + row.fn == int((test["label"] == 1).sum()), (folder, row)
