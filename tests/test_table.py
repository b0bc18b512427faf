import pandas as pd
import pytest

from anomalyflow.data.table import fit_rows, make_table, read_samples, require_no_test, write_samples
from anomalyflow.errors import DataError, LeakageError


def _row(path, split, label=0, defect="good", kind="none", masks=()):
    return dict(dataset="d", category="c", path=path, split=split, label=label, defect_type=defect,
                anomaly_kind=kind, mask_paths=list(masks))


@pytest.fixture
def table():
    return make_table([
        _row("t/1.png", "test", 1, "scratch", "structural", ["m/1.png", "m/1b.png"]),
        _row("a.png", "train"), _row("b.png", "validation"), _row("t/0.png", "test"),
    ])


def test_round_trip_keeps_mask_lists_and_order(tmp_path, table):
    write_samples(table, tmp_path / "samples.csv")
    again = read_samples(tmp_path / "samples.csv")
    assert again["split"].tolist() == ["train", "validation", "test", "test"]
    assert again.loc[again["label"] == 1, "mask_paths"].iloc[0] == ["m/1.png", "m/1b.png"]
    pd.testing.assert_frame_equal(again, table)


def test_statistics_refuse_test_rows(table):
    assert fit_rows(table, "validation", purpose="quantiles")["path"].tolist() == ["b.png"]
    with pytest.raises(LeakageError, match="quantiles"):
        fit_rows(table, ["validation", "test"], purpose="quantiles")
    with pytest.raises(LeakageError, match="t/0.png"):
        require_no_test(table, purpose="z-scores")


def test_invariants(table):
    with pytest.raises(DataError, match="only the test split"):
        make_table([_row("x.png", "train", 1, "scratch", "structural")])
    with pytest.raises(DataError, match="unknown split"):
        make_table([_row("x.png", "holdout")])
    with pytest.raises(DataError, match="listed twice"):
        make_table([_row("x.png", "train"), _row("x.png", "test")])
