import pytest

from anomalyflow.atomic import atomic_path, write_json


def test_failed_write_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "out" / "file.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_success_replaces_and_keeps_suffix(tmp_path):
    target = tmp_path / "stats.json"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"
    write_json(target, {"a": 1})
    assert '"a": 1' in target.read_text()


def test_directory_mode(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (target / "a.txt").read_text() == "x"
