"""Where an EfficientAD teacher comes from (files, a checked download, a PUAD folder, distillation)."""

from __future__ import annotations

import hashlib

import pytest

from anomalyflow.efficientad.teachers import distillation_params, require_teacher, teacher_source
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.fetch import fetch_file

SHA = "ab" * 32


def test_sources_are_taken_in_the_documented_order(tmp_path):
    spec = {"files": {"s": "mine.pth"}, "download": {"s": {"url": "https://x/t.pth", "sha256": SHA}},
            "puad_dir": "puad", "imagenet_root": "imagenet", "iterations": 60000}
    assert teacher_source("t", spec, "s").kind == "file"
    assert teacher_source("t", spec, "m").kind == "puad"  # no file or download for m
    assert teacher_source("t", spec, "m").path == "puad/m_size/teacher/teacher.pt"
    spec["files"] = {}
    download = teacher_source("t", spec, "s")
    assert (download.kind, download.path, download.url) == ("download", "resources/teachers/t/s.pth", "https://x/t.pth")
    assert SHA[:12] in download.description
    distilled = teacher_source("t", {"imagenet_root": "imagenet", "iterations": 5}, "m")
    assert (distilled.kind, distilled.path, distilled.images) == ("distil", "results/teacher/t/m/teacher.pt",
                                                                  "imagenet")
    with pytest.raises(ConfigError, match=r"teachers\.t: no source for the EfficientAD-S teacher"):
        teacher_source("t", {}, "s")


def test_a_missing_teacher_is_one_line_with_every_remedy(tmp_path):
    with pytest.raises(DataError) as caught:
        require_teacher("imagenet", {"imagenet_root": str(tmp_path / "imagenet" / "train")}, "s")
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "imagenet" / "train") in message
    for remedy in ("teachers.imagenet.files.s", "teachers.imagenet.download.s", "teachers.imagenet.puad_dir",
                   "nelson1425/EfficientAD", "Apache-2.0"):
        assert remedy in message
    with pytest.raises(DataError, match=r"nope\.pth: teacher file not found \(teachers\.imagenet\.files\.m\)"):
        require_teacher("imagenet", {"files": {"m": str(tmp_path / "nope.pth")}}, "m")
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    assert require_teacher("imagenet", {"imagenet_root": str(tmp_path / "imagenet" / "train")}, "s").kind == "distil"


def test_where_a_teacher_comes_from_is_no_distillation_parameter():
    spec = {"imagenet_root": "x", "iterations": 10, "files": {"s": "a"}, "download": {}, "puad_dir": None,
            "threads": 4, "checkpoint_every": 5}
    assert distillation_params(spec) == {"imagenet_root": "x", "iterations": 10}


def test_fetch_keeps_the_file_only_when_its_sha256_matches(tmp_path):
    source = tmp_path / "teacher_small.pth"
    source.write_bytes(b"weights" * 1000)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "kept" / "s.pth"
    assert fetch_file(source.as_uri(), target, sha.upper(), progress=False) == sha
    assert target.read_bytes() == source.read_bytes()

    other = tmp_path / "other" / "s.pth"
    with pytest.raises(DataError, match=r"SHA-256 [0-9a-f]{64} differs from the expected " + SHA):
        fetch_file(source.as_uri(), other, SHA, progress=False)
    assert not other.exists() and not list(other.parent.iterdir())  # nothing half-kept

    with pytest.raises(DataError, match=r"missing\.pth: cannot download"):
        fetch_file((tmp_path / "missing.pth").as_uri(), other, SHA, progress=False)
