"""Dataset layouts → the sample table: the real MVTec AD subset and tiny trees built here per layout."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anomalyflow.data.images import load_mask, load_mask_channels
from anomalyflow.data.layouts import (
    category_files,
    list_categories,
    read_samples_from_layout,
    split_validation,
)
from anomalyflow.data.mvtec_loco import read_defects_config
from anomalyflow.data.table import SAMPLE_COLUMNS
from anomalyflow.errors import ConfigError, DataError

SIZE = (12, 8)  # width, height of the tiny fixture images


def _image(path: Path, size: tuple[int, int] = SIZE, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if path.suffix.lower() in (".png", ".bmp") else "RGB"
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(path)
    return path


def _mask(path: Path, value: int = 255, size: tuple[int, int] = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.zeros((size[1], size[0]), dtype=np.uint8)
    values[2:5, 3:7] = value
    Image.fromarray(values).save(path)
    return path


def _counts(table) -> dict[tuple[str, str], int]:
    return {key: len(group) for key, group in table.groupby(["split", "defect_type"])}


# --- the real MVTec AD mini subset ---------------------------------------------------------------


def test_real_mvtec_ad_subset(mvtec_mini):
    table = read_samples_from_layout("mvtec_ad", mvtec_mini, "screw")
    assert list(table.columns) == SAMPLE_COLUMNS
    assert set(table["dataset"]) == {"mvtec_ad"} and set(table["category"]) == {"screw"}
    assert (table["split"] == "train").sum() == 21 and (table["split"] == "validation").sum() == 3
    test = table.loc[table["split"] == "test"]
    assert (test["label"] == 0).sum() == 8 and (test["label"] == 1).sum() == 15
    anomalous = test.loc[test["label"] == 1]
    assert sorted(set(anomalous["defect_type"])) == [
        "manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"]
    assert set(anomalous["anomaly_kind"]) == {"structural"}
    for path, masks in zip(anomalous["path"], anomalous["mask_paths"], strict=True):
        image = Path(path)
        assert masks == [str(mvtec_mini / "screw" / "ground_truth" / image.parent.name / f"{image.stem}_mask.png")]
    assert all(m == [] for m in table.loc[table["label"] == 0, "mask_paths"])
    assert list_categories("mvtec_ad", mvtec_mini) == ["screw"]
    files = category_files("mvtec_ad", mvtec_mini, "screw")
    assert len(files) == 24 + 8 + 15 + 15 and set(table["path"]) | {m for ms in table["mask_paths"] for m in ms} \
        == set(files)


def test_real_split_is_the_puad_randperm_rule(mvtec_mini):
    table = read_samples_from_layout("mvtec_ad", mvtec_mini, "screw", dataset="real", check_sizes=False)
    ordered = sorted(str(p) for p in (mvtec_mini / "screw" / "train" / "good").glob("*.png"))
    order = torch.randperm(24, generator=torch.Generator().manual_seed(42)).tolist()
    expected_validation = {ordered[i] for i in order[24 - int(0.15 * 24):]}
    assert set(table.loc[table["split"] == "validation", "path"]) == expected_validation
    again = read_samples_from_layout("mvtec_ad", mvtec_mini, "screw", dataset="real")
    assert again.equals(table) and set(table["dataset"]) == {"real"}
    other = read_samples_from_layout("mvtec_ad", mvtec_mini, "screw", validation_seed=7)
    assert set(other.loc[other["split"] == "validation", "path"]) != expected_validation


def test_split_validation_rule():
    paths = [f"img/{i:03d}.png" for i in range(20)][::-1]
    train, validation = split_validation(paths, 0.15, 42)
    ordered = sorted(paths)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(42)).tolist()
    assert train == [ordered[i] for i in order[:17]] and validation == [ordered[i] for i in order[17:]]
    assert split_validation(paths, 0.0, 42) == (ordered, [])
    assert split_validation(paths[:5], 0.15, 42) == (sorted(paths[:5]), [])  # int(0.75) == 0
    for bad in (1.0, -0.1, "0.1"):
        with pytest.raises(ConfigError, match="validation_fraction"):
            split_validation(paths, bad, 42)


# --- MVTec AD on a tiny tree ---------------------------------------------------------------------


def _mvtec_ad(root: Path, category: str = "widget", n_train: int = 7) -> Path:
    base = root / category
    for i in range(n_train):
        _image(base / "train" / "good" / f"{i:03d}.png")
    for i in range(2):
        _image(base / "test" / "good" / f"{i:03d}.png")
    for defect in ("crack", "hole"):
        for i in range(2):
            _image(base / "test" / defect / f"{i:03d}.png")
            _mask(base / "ground_truth" / defect / f"{i:03d}_mask.png")
    return base


def test_mvtec_ad_tree_ignores_hidden_and_non_image_files(tmp_path):
    base = _mvtec_ad(tmp_path)
    (base / "train" / "good" / ".DS_Store").write_bytes(b"\0\0")
    (base / "train" / "good" / "._000.png").write_bytes(b"\0")  # macOS resource fork: hidden
    (base / "train" / "good" / "notes.txt").write_text("not data")
    (tmp_path / "README.md").write_text("a file beside the categories")
    (tmp_path / ".cache").mkdir()
    table = read_samples_from_layout("mvtec_ad", tmp_path, "widget", validation_fraction=0.3)
    assert _counts(table) == {("train", "good"): 5, ("validation", "good"): 2, ("test", "good"): 2,
                              ("test", "crack"): 2, ("test", "hole"): 2}
    assert list_categories("mvtec_ad", tmp_path) == ["widget"]


def test_mvtec_ad_accepts_a_test_set_of_one_class(tmp_path):
    base = _mvtec_ad(tmp_path)
    shutil.rmtree(base / "test" / "good")
    table = read_samples_from_layout("mvtec_ad", tmp_path, "widget")
    assert (table.loc[table["split"] == "test", "label"] == 1).all()


@pytest.mark.parametrize("case", [
    "root missing", "category missing", "train missing", "train empty", "test missing", "test empty",
    "mask missing", "mask without image", "mask folder without test folder", "mask size",
    "undecodable image", "loose test image", "two masks",
])
def test_mvtec_ad_errors_name_the_path(tmp_path, case):
    base = _mvtec_ad(tmp_path)
    root, category, culprit = tmp_path, "widget", None
    if case == "root missing":
        root = culprit = tmp_path / "nowhere"
    elif case == "category missing":
        category, culprit = "gadget", tmp_path / "gadget"
    elif case == "train missing":
        shutil.rmtree(culprit := base / "train" / "good")
    elif case == "train empty":
        for f in (culprit := base / "train" / "good").iterdir():
            f.unlink()
    elif case == "test missing":
        shutil.rmtree(culprit := base / "test")
    elif case == "test empty":
        for d in (base / "test").iterdir():
            shutil.rmtree(d)
        culprit = base / "test"
    elif case == "mask missing":
        (base / "ground_truth" / "hole" / "001_mask.png").unlink()
        culprit = base / "test" / "hole" / "001.png"
    elif case == "mask without image":
        culprit = _mask(base / "ground_truth" / "hole" / "007_mask.png")
    elif case == "mask folder without test folder":
        culprit = _mask(base / "ground_truth" / "dent" / "000_mask.png")
    elif case == "mask size":
        culprit = _mask(base / "ground_truth" / "crack" / "000_mask.png", size=(6, 4))
    elif case == "undecodable image":
        (culprit := base / "train" / "good" / "003.png").write_bytes(b"garbage, not a png")
    elif case == "loose test image":
        culprit = _image(base / "test" / "stray.png")
    elif case == "two masks":
        culprit = _mask(base / "ground_truth" / "crack" / "000_mask.bmp")
    with pytest.raises(DataError) as error:
        read_samples_from_layout("mvtec_ad", root, category)
    message = str(error.value)
    assert str(culprit) in message and "\n" not in message
    if case == "category missing":
        assert "widget" in message  # the categories that are there


def test_unreadable_entries_in_image_folders_are_reported_not_skipped(tmp_path):
    base = _mvtec_ad(tmp_path)
    loop = base / "train" / "good" / "099.png"
    os.symlink(loop, loop)
    with pytest.raises(DataError, match=f"{loop}: symbolic link loop"):
        read_samples_from_layout("mvtec_ad", tmp_path, "widget")


def test_check_sizes_off_opens_nothing(tmp_path):
    base = _mvtec_ad(tmp_path)
    _mask(base / "ground_truth" / "crack" / "000_mask.png", size=(6, 4))
    (base / "train" / "good" / "003.png").write_bytes(b"")
    table = read_samples_from_layout("mvtec_ad", tmp_path, "widget", check_sizes=False)
    assert len(table) == 13


def test_unknown_layout_and_bad_category_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset layout 'mvtec'"):
        read_samples_from_layout("mvtec", tmp_path, "x")
    with pytest.raises(ConfigError, match="not a folder name"):
        read_samples_from_layout("mvtec_ad", tmp_path, "../x")


def test_category_files_follow_the_tree(tmp_path):
    base = _mvtec_ad(tmp_path)
    before = category_files("mvtec_ad", tmp_path, "widget")
    assert len(before) == 7 + 2 + 4 + 4 and before == sorted(before)
    added = _image(base / "train" / "good" / "100.png")
    assert category_files("mvtec_ad", tmp_path, "widget") == sorted([*before, str(added)])


# --- MVTec LOCO ----------------------------------------------------------------------------------

DEFECTS = [
    {"defect_name": "missing_part", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": True},
    {"defect_name": "scratch", "pixel_value": 254, "saturation_threshold": 30, "relative_saturation": False},
]


def _loco(root: Path, category: str = "box") -> Path:
    base = root / category
    for split, n in (("train", 6), ("validation", 2)):
        for i in range(n):
            _image(base / split / "good" / f"{i:03d}.png")
    _image(base / "test" / "good" / "000.png")
    _image(base / "test" / "logical_anomalies" / "000.png")
    _mask(base / "ground_truth" / "logical_anomalies" / "000" / "000.png", 255)
    _mask(base / "ground_truth" / "logical_anomalies" / "000" / "001.png", 254)
    _image(base / "test" / "structural_anomalies" / "000.png")
    _mask(base / "ground_truth" / "structural_anomalies" / "000" / "000.png", 254)
    (base / "defects_config.json").write_text(json.dumps(DEFECTS))
    return base


def test_mvtec_loco_tree(tmp_path):
    base = _loco(tmp_path)
    table = read_samples_from_layout("loco", tmp_path, "box", validation_fraction=0.5)
    assert set(table["dataset"]) == {"loco"}
    assert _counts(table) == {("train", "good"): 6, ("validation", "good"): 2, ("test", "good"): 1,
                              ("test", "logical_anomalies"): 1, ("test", "structural_anomalies"): 1}
    kinds = dict(zip(table["defect_type"], table["anomaly_kind"], strict=False))
    assert kinds["logical_anomalies"] == "logical" and kinds["structural_anomalies"] == "structural"
    logical = table.loc[table["defect_type"] == "logical_anomalies"].iloc[0]
    gt = base / "ground_truth" / "logical_anomalies" / "000"
    assert logical["mask_paths"] == [str(gt / "000.png"), str(gt / "001.png")]
    channels, values = load_mask_channels(logical["mask_paths"])
    assert channels.shape == (2, SIZE[1], SIZE[0]) and values == [255, 254]
    assert load_mask(logical["mask_paths"]).sum() == 12
    assert read_defects_config(tmp_path, "box") == DEFECTS
    assert str(base / "defects_config.json") in category_files("mvtec_loco", tmp_path, "box")
    assert read_samples_from_layout("mvtec_loco", tmp_path, "box")["dataset"].iloc[0] == "mvtec_loco"


@pytest.mark.parametrize("case", [
    "validation missing", "gt folder missing", "gt folder empty", "gt without image",
    "unknown test folder", "config missing", "mask size",
])
def test_mvtec_loco_errors(tmp_path, case):
    base = _loco(tmp_path)
    gt = base / "ground_truth" / "logical_anomalies"
    if case == "validation missing":
        shutil.rmtree(culprit := base / "validation" / "good")
    elif case == "gt folder missing":
        shutil.rmtree(gt / "000")
        culprit = base / "test" / "logical_anomalies" / "000.png"
    elif case == "gt folder empty":
        for f in (culprit := gt / "000").iterdir():
            f.unlink()
    elif case == "gt without image":
        _mask(culprit := gt / "005" / "000.png")
        culprit = culprit.parent
    elif case == "unknown test folder":
        _image((culprit := base / "test" / "odd") / "000.png")
    elif case == "config missing":
        (culprit := base / "defects_config.json").unlink()
    elif case == "mask size":
        culprit = _mask(gt / "000" / "001.png", size=(3, 3))
    with pytest.raises(DataError) as error:
        read_samples_from_layout("mvtec_loco", tmp_path, "box")
    assert str(culprit) in str(error.value)


@pytest.mark.parametrize(("config", "words"), [
    ("{not json", "not valid JSON"),
    ("[]", "non-empty JSON list"),
    (json.dumps([{"defect_name": "a", "pixel_value": 1}]), "lacks saturation_threshold"),
    (json.dumps([DEFECTS[0], {**DEFECTS[1], "pixel_value": 255}]), "also used by"),
    (json.dumps([{**DEFECTS[0], "saturation_threshold": 2.0}]), "saturation_threshold"),
    (json.dumps([{**DEFECTS[0], "pixel_value": "255"}]), "pixel_value"),
    (json.dumps([{**DEFECTS[0], "relative_saturation": "yes"}]), "relative_saturation"),
])
def test_malformed_defects_config(tmp_path, config, words):
    base = _loco(tmp_path)
    (base / "defects_config.json").write_text(config)
    with pytest.raises(DataError, match=words) as error:
        read_defects_config(tmp_path, "box")
    assert str(base / "defects_config.json") in str(error.value)


# --- VisA ----------------------------------------------------------------------------------------


def _visa(root: Path) -> Path:
    lines = ["object,split,label,image,mask"]
    for category in ("candle", "pcb1"):
        data = Path(category) / "Data"
        for i in range(7):
            rel = data / "Images" / "Normal" / f"{i:04d}.JPG"
            _image(root / rel)
            lines.append(f"{category},{'train' if i < 5 else 'test'},normal,{rel},")
        for i in range(2):
            rel, mask = data / "Images" / "Anomaly" / f"{i:03d}.JPG", data / "Masks" / "Anomaly" / f"{i:03d}.png"
            _image(root / rel)
            _mask(root / mask, value=i + 1)  # VisA masks number their regions 1, 2, ...
            lines.append(f"{category},test,anomaly,{rel},{mask}")
    csv = root / "split_csv" / "1cls.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(lines) + "\n")
    return csv


def test_visa_split_file(tmp_path):
    csv = _visa(tmp_path)
    assert list_categories("visa", tmp_path) == ["candle", "pcb1"]
    table = read_samples_from_layout("visa", tmp_path, "candle", validation_fraction=0.2)
    assert _counts(table) == {("train", "good"): 4, ("validation", "good"): 1, ("test", "good"): 2,
                              ("test", "anomaly"): 2}
    anomalous = table.loc[table["label"] == 1]
    assert all(len(m) == 1 and load_mask(m).sum() == 12 for m in anomalous["mask_paths"])
    assert table["path"].str.startswith(str(tmp_path / "candle")).all()
    files = category_files("visa", tmp_path, "candle")
    assert str(csv) in files and len(files) == 1 + 9 + 2


@pytest.mark.parametrize("case", ["csv missing", "column missing", "anomalous train", "mask file missing",
                                  "image missing", "unknown split", "category missing"])
def test_visa_errors(tmp_path, case):
    csv = _visa(tmp_path)
    text, category, culprit = csv.read_text(), "candle", csv
    if case == "csv missing":
        csv.unlink()
    elif case == "column missing":
        csv.write_text(text.replace("object,split,label,image,mask", "object,split,label,image,masks"))
    elif case == "anomalous train":
        csv.write_text(text.replace("candle,test,anomaly", "candle,train,anomaly", 1))
    elif case == "mask file missing":
        (culprit := tmp_path / "candle" / "Data" / "Masks" / "Anomaly" / "001.png").unlink()
    elif case == "image missing":
        (culprit := tmp_path / "candle" / "Data" / "Images" / "Normal" / "0003.JPG").unlink()
    elif case == "unknown split":
        csv.write_text(text.replace("candle,train,normal", "candle,val,normal", 1))
    elif case == "category missing":
        category = "fryum"
    with pytest.raises(DataError) as error:
        read_samples_from_layout("visa", tmp_path, category)
    assert str(culprit) in str(error.value)
    if case == "category missing":
        assert "candle, pcb1" in str(error.value)


# --- BTAD ----------------------------------------------------------------------------------------


def _btad(root: Path) -> None:
    for category, image_ext, mask_ext in (("01", ".bmp", ".png"), ("02", ".png", ".png"), ("03", ".bmp", ".bmp")):
        base = root / category
        for i in range(6):
            _image(base / "train" / "ok" / f"{i:04d}{image_ext}")
        _image(base / "test" / "ok" / f"0000{image_ext}")
        for i in range(2):
            _image(base / "test" / "ko" / f"{i:04d}{image_ext}")
            _mask(base / "ground_truth" / "ko" / f"{i:04d}{mask_ext}")


def test_btad_masks_match_by_stem_across_extensions(tmp_path):
    _btad(tmp_path)
    assert list_categories("btad", tmp_path) == ["01", "02", "03"]
    table = read_samples_from_layout("btad", tmp_path, "01", validation_fraction=0.34)
    assert _counts(table) == {("train", "good"): 4, ("validation", "good"): 2, ("test", "good"): 1,
                              ("test", "ko"): 2}
    anomalous = table.loc[table["label"] == 1].iloc[0]
    assert anomalous["path"].endswith("0000.bmp") and anomalous["mask_paths"][0].endswith("0000.png")
    assert all(len(read_samples_from_layout("btad", tmp_path, c)) == 9 for c in ("02", "03"))


def test_btad_errors(tmp_path):
    _btad(tmp_path)
    (tmp_path / "01" / "ground_truth" / "ko" / "0001.png").unlink()
    with pytest.raises(DataError, match=str(tmp_path / "01" / "test" / "ko" / "0001.bmp")):
        read_samples_from_layout("btad", tmp_path, "01")
    stray = _mask(tmp_path / "02" / "ground_truth" / "ko" / "0009.png")
    with pytest.raises(DataError, match=str(stray)):
        read_samples_from_layout("btad", tmp_path, "02")
    shutil.rmtree(tmp_path / "03" / "train" / "ok")
    with pytest.raises(DataError, match=str(tmp_path / "03" / "train" / "ok")):
        read_samples_from_layout("btad", tmp_path, "03")


# --- folder --------------------------------------------------------------------------------------


def _folder(root: Path, masks: bool = True) -> Path:
    base = root / "bracket"
    for i in range(8):
        _image(base / "train" / "good" / f"img{i}.jpg")
    _image(base / "test" / "good" / "a.png")
    _image(base / "test" / "bent" / "b1.png")
    _image(base / "test" / "bent" / "b2.png")
    _image(base / "test" / "rust" / "r1.jpeg")
    if masks:
        _mask(base / "ground_truth" / "bent" / "b1_mask.png")
        _mask(base / "ground_truth" / "bent" / "b2.png")  # the image's own stem works too
        _mask(base / "ground_truth" / "rust" / "r1_mask.bmp")
    return base


def test_folder_with_masks(tmp_path):
    base = _folder(tmp_path)
    table = read_samples_from_layout("folder", tmp_path, "bracket", dataset="mine", validation_fraction=0.25)
    assert _counts(table) == {("train", "good"): 6, ("validation", "good"): 2, ("test", "good"): 1,
                              ("test", "bent"): 2, ("test", "rust"): 1}
    masks = dict(zip(table["path"], table["mask_paths"], strict=True))
    assert masks[str(base / "test" / "bent" / "b2.png")] == [str(base / "ground_truth" / "bent" / "b2.png")]
    assert masks[str(base / "test" / "rust" / "r1.jpeg")] == [str(base / "ground_truth" / "rust" / "r1_mask.bmp")]
    assert list_categories("folder", tmp_path) == ["bracket"]
    assert len(category_files("folder", tmp_path, "bracket")) == 12 + 3


def test_folder_without_masks_and_with_options(tmp_path):
    base = _folder(tmp_path, masks=False)
    table = read_samples_from_layout("folder", tmp_path, "bracket")
    assert (table["mask_paths"].map(len) == 0).all() and (table["label"] == 1).sum() == 3
    _folder(tmp_path)  # now with ground_truth/, which an explicit null switches off
    table = read_samples_from_layout("folder", tmp_path, "bracket", folder={"masks": None})
    assert (table["mask_paths"].map(len) == 0).all()
    for i in range(3):
        _image(base / "val" / f"v{i}.png")
    options = {"validation": "val", "test_anomalous": ["test/rust"], "masks": "ground_truth"}
    with pytest.raises(DataError, match="bent"):  # ground_truth/bent now has no listed test folder
        read_samples_from_layout("folder", tmp_path, "bracket", folder=options)
    shutil.rmtree(base / "ground_truth" / "bent")
    table = read_samples_from_layout("folder", tmp_path, "bracket", folder=options)
    assert _counts(table) == {("train", "good"): 8, ("validation", "good"): 3, ("test", "good"): 1,
                              ("test", "rust"): 1}


def test_folder_errors(tmp_path):
    base = _folder(tmp_path)
    with pytest.raises(ConfigError, match="folder.tset_good"):
        read_samples_from_layout("folder", tmp_path, "bracket", folder={"tset_good": "x"})
    with pytest.raises(DataError, match=str(base / "test" / "dent")):
        read_samples_from_layout("folder", tmp_path, "bracket", folder={"test_anomalous": ["test/dent"]})
    with pytest.raises(DataError, match=str(base / "masks")):
        read_samples_from_layout("folder", tmp_path, "bracket", folder={"masks": "masks"})
    with pytest.raises(DataError, match=str(base / "test" / "ok")):
        read_samples_from_layout("folder", tmp_path, "bracket", folder={"test_good": "test/ok"})
    shutil.rmtree(base / "test" / "good")  # the default test_good may be absent: defects only
    filled_in = {"train": "train/good", "test_good": "test/good", "masks": "ground_truth", "validation": None}
    table = read_samples_from_layout("folder", tmp_path, "bracket", folder=filled_in)
    assert (table.loc[table["split"] == "test", "label"] == 1).all()
    (base / "ground_truth" / "bent" / "b2.png").unlink()
    with pytest.raises(DataError, match=str(base / "test" / "bent" / "b2.png")):
        read_samples_from_layout("folder", tmp_path, "bracket")


def test_layout_options_are_ignored_by_other_layouts(tmp_path):
    _mvtec_ad(tmp_path)
    filled_in = {"train": "train/good", "test_good": "test/good", "masks": None, "validation": None}
    table = read_samples_from_layout("mvtec_ad", tmp_path, "widget", folder=filled_in)
    assert len(table) == 13


def test_relative_root_gives_relative_paths(tmp_path, monkeypatch):
    _mvtec_ad(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    table = read_samples_from_layout("mvtec_ad", "data", "widget")
    assert all(p.startswith(os.path.join("data", "widget")) for p in table["path"])
