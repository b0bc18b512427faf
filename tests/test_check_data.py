"""``check-data``: the report, its warnings, ``--full`` decoding, and the command's exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomalyflow.data.check import check_data
from anomalyflow.errors import DataError


def _image(path: Path, size: tuple[int, int] = (10, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 120).save(path)
    return path


def _mask(path: Path, value: int = 255, size: tuple[int, int] = (10, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.zeros((size[1], size[0]), dtype=np.uint8)
    values[1:3, 1:4] = value
    Image.fromarray(values).save(path)
    return path


def _mvtec(root: Path, category: str = "nut", n_train: int = 8, good_test: bool = True) -> Path:
    base = root / category
    for i in range(n_train):
        _image(base / "train" / "good" / f"{i:03d}.png")
    if good_test:
        _image(base / "test" / "good" / "000.png")
    _image(base / "test" / "crack" / "000.png")
    _mask(base / "ground_truth" / "crack" / "000_mask.png")
    return base


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "ANOMALYFLOW_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "anomalyflow", "check-data", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


def test_command_on_the_real_subset_and_on_a_broken_tree(mvtec_mini, tmp_path):
    base = _mvtec(tmp_path / "data")
    (base / "ground_truth" / "crack" / "000_mask.png").unlink()
    # Both commands run at once: each pays for importing torch.
    good = _start("--dataset", "mvtec_ad", "--root", str(mvtec_mini), "--category", "screw", cwd=tmp_path)
    broken = _start("--dataset", "mvtec_ad", "--root", str(tmp_path / "data"), cwd=tmp_path)
    returncode, stdout, stderr = _finish(good)
    assert returncode == 0, stderr
    lines = [line.split() for line in stdout.splitlines()]
    assert ["screw", "train", "good", "none", "21", "0"] in lines
    assert ["screw", "validation", "good", "none", "3", "0"] in lines
    assert ["screw", "test", "good", "none", "8", "0"] in lines
    assert ["screw", "test", "thread_top", "structural", "3", "3"] in lines
    assert ["screw", "total", "47", "15"] in lines
    assert "warning" not in stdout

    returncode, stdout, stderr = _finish(broken)
    assert returncode != 0
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert str(base / "test" / "crack" / "000.png") in stderr


def test_report_counts_and_warnings(tmp_path):
    _mvtec(tmp_path, "nut")
    _mvtec(tmp_path, "bolt", n_train=3, good_test=False)
    report = check_data("mvtec_ad", tmp_path)
    assert "2 categories" in report
    rows = [line.split() for line in report.splitlines()]
    assert ["nut", "train", "good", "none", "7", "0"] in rows
    assert ["nut", "validation", "good", "none", "1", "0"] in rows
    assert ["nut", "test", "crack", "structural", "1", "1"] in rows
    assert ["bolt", "total", "4", "1"] in rows
    assert "warning: bolt: the test set has no good images" in report
    assert "warning: bolt: the validation split is empty" in report
    assert "warning: nut" not in report
    only_nut = check_data("mvtec_ad", tmp_path, category="nut")
    assert "bolt" not in only_nut and "1 category" in only_nut


def test_folder_without_masks_is_reported(tmp_path):
    base = tmp_path / "part"
    for i in range(7):
        _image(base / "train" / "good" / f"{i}.png")
    _image(base / "test" / "good" / "g.png")
    _image(base / "test" / "dent" / "d.png")
    assert "no ground-truth masks; pixel metrics will be skipped" in check_data("folder", tmp_path)


def test_full_decodes_every_file(tmp_path):
    base = _mvtec(tmp_path)
    image = base / "test" / "good" / "000.png"
    noise = np.random.default_rng(0).integers(0, 256, (6, 10), dtype=np.uint8)  # incompressible pixels
    Image.fromarray(noise).save(image)
    data = image.read_bytes()
    # Corrupt pixel data with an intact header and end: only a full decode sees it.
    middle = len(data) // 2
    image.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 8]) + data[middle + 8:])
    assert "nut" in check_data("mvtec_ad", tmp_path)
    with pytest.raises(DataError, match=str(image)):
        check_data("mvtec_ad", tmp_path, full=True)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_the_default_check_catches_a_file_cut_in_half(tmp_path, suffix):
    """A truncated file's header reads fine; the default mode checks each file's end too (issue 13)."""
    base = _mvtec(tmp_path)
    image = base / "test" / "good" / f"000{suffix}"
    (base / "test" / "good" / "000.png").unlink()
    noise = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    Image.fromarray(noise).save(image)
    assert "nut" in check_data("mvtec_ad", tmp_path)  # complete: fine
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{image}: truncated"):
        check_data("mvtec_ad", tmp_path)


def test_full_checks_loco_pixel_values_against_the_config(tmp_path):
    base = tmp_path / "box"
    for split in ("train", "validation"):
        for i in range(3):
            _image(base / split / "good" / f"{i:03d}.png")
    _image(base / "test" / "good" / "000.png")
    _image(base / "test" / "structural_anomalies" / "000.png")
    mask = _mask(base / "ground_truth" / "structural_anomalies" / "000" / "000.png", value=200)
    config = [{"defect_name": "dent", "pixel_value": 255, "saturation_threshold": 1.0,
               "relative_saturation": True}]
    (base / "defects_config.json").write_text(json.dumps(config))
    report = check_data("loco", tmp_path)
    assert "logical" not in report and "structural_anomalies" in report
    with pytest.raises(DataError, match=f"{mask}: defect pixel value 200 is not in defects_config.json"):
        check_data("loco", tmp_path, full=True)
    _mask(mask, value=255)
    assert "decoded every image and mask" in check_data("loco", tmp_path, full=True)
