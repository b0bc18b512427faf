"""The MVTec LOCO AD layout (also written by the synthetic demo generator).

``<root>/<category>/``: ``train/good``, ``validation/good`` (the dataset's own validation set, which
EfficientAD and PUAD use for quantiles and score normalisation, docs/methods.md A7), ``test/good``,
``test/logical_anomalies``, ``test/structural_anomalies``, and for each anomalous test image
``ground_truth/<type>/<stem>/000.png, 001.png, …``: one file per defect region, whose nonzero pixel
value names the defect in ``defects_config.json`` (read by :func:`read_defects_config`; the official
evaluation uses it for the sPRO saturation areas).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from anomalyflow.data.layouts import ReadOptions, require_test_images, sample, train_rows
from anomalyflow.data.tree import (
    categories_with,
    list_files,
    list_images,
    refuse_loose_images,
    require_category,
    require_folder,
    stem,
    subfolders,
    train_categories,
    train_category_files,
)
from anomalyflow.errors import DataError

EXAMPLE = "train/good, validation/good and test/<type>"
GOOD = "good"
#: test folder → anomaly kind
TEST_KINDS = {GOOD: "none", "logical_anomalies": "logical", "structural_anomalies": "structural"}
CONFIG_NAME = "defects_config.json"
CONFIG_KEYS = ("defect_name", "pixel_value", "saturation_threshold", "relative_saturation")


def list_categories(root: Path) -> list[str]:
    return train_categories(root, GOOD)


def read_rows(root: Path, category: str, options: ReadOptions) -> list[dict[str, Any]]:
    base = require_category(root, category, categories_with(root, "train"), EXAMPLE)
    train = list_images(base / "train" / GOOD, what="training (normal)")
    validation = list_images(base / "validation" / GOOD, what="validation (normal)")
    rows = train_rows(options, category, train, validation)
    read_defects_config(root, category)  # a malformed config should fail now, not in the evaluation job
    test_dir = require_folder(base / "test", "test", "test/good, test/logical_anomalies and "
                              "test/structural_anomalies")
    refuse_loose_images(test_dir, "test/<type>")
    test_types = subfolders(test_dir)
    for defect_type in test_types:
        if defect_type not in TEST_KINDS:
            raise DataError(f"{test_dir / defect_type}: unknown test folder for the mvtec_loco layout; "
                            f"expected {', '.join(TEST_KINDS)} (use the folder layout for other names)")
        kind = TEST_KINDS[defect_type]
        images = list_images(test_dir / defect_type, what="test", required=False)
        if kind == "none":
            rows += [sample(options, category, p, "test") for p in images]
            continue
        gt_dir = base / "ground_truth" / defect_type
        for image in images:
            rows.append(sample(options, category, image, "test", defect_type, kind, _masks(image, gt_dir)))
        _refuse_orphans(gt_dir, {stem(p) for p in images}, test_dir / defect_type)
    for gt_type in subfolders(base / "ground_truth"):
        if gt_type not in test_types and gt_type != GOOD:
            _refuse_orphans(base / "ground_truth" / gt_type, set(), test_dir / gt_type)
    require_test_images(rows, test_dir)
    return rows


def category_files(root: Path, category: str) -> list[str]:
    files = train_category_files(root, category, EXAMPLE, ("train", "validation", "test", "ground_truth"))
    config = root / category / CONFIG_NAME
    return files + ([str(config)] if config.exists() else [])


def read_defects_config(root: str | Path, category: str) -> list[dict[str, Any]]:
    """The validated entries of ``<root>/<category>/defects_config.json``.

    Each entry has ``defect_name`` (str), ``pixel_value`` (int 1..65535, unique), ``saturation_threshold``
    (a positive number; at most 1 when relative) and ``relative_saturation`` (bool), as in the
    official MVTec LOCO files. Returned as plain dicts with exactly those keys.
    """
    return read_defects_config_file(Path(root) / category / CONFIG_NAME)


def read_defects_config_file(path: str | Path) -> list[dict[str, Any]]:
    """:func:`read_defects_config` for a config file given by its path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: defects config not found; the mvtec_loco layout needs it beside train/ "
                        "(it maps mask pixel values to defect types)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the defects config ({error})") from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty JSON list of defect entries")
    config: list[dict[str, Any]] = []
    seen: dict[int, str] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict):
            raise DataError(f"{where} is not an object")
        missing = [key for key in CONFIG_KEYS if key not in entry]
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)} (each entry needs {', '.join(CONFIG_KEYS)})")
        name, value = entry["defect_name"], entry["pixel_value"]
        threshold, relative = entry["saturation_threshold"], entry["relative_saturation"]
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: defect_name must be a non-empty string")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise DataError(f"{where} ({name}): pixel_value {value!r} is not an integer in 1..65535")
        if value in seen:
            raise DataError(f"{where} ({name}): pixel_value {value} is also used by {seen[value]!r}")
        if not isinstance(relative, bool):
            raise DataError(f"{where} ({name}): relative_saturation must be true or false")
        numeric = not isinstance(threshold, bool) and isinstance(threshold, int | float)
        if not numeric or not math.isfinite(threshold) or threshold <= 0 or (relative and threshold > 1):
            limit = "in (0, 1] when relative_saturation is true" if relative else "a positive pixel count"
            raise DataError(f"{where} ({name}): saturation_threshold {threshold!r} must be {limit}")
        seen[value] = name
        config.append({"defect_name": name, "pixel_value": value, "saturation_threshold": threshold,
                       "relative_saturation": relative})
    return config


def _masks(image: str, gt_dir: Path) -> list[str]:
    """The mask files of one anomalous image: ``ground_truth/<type>/<stem>/*.png``, in name order."""
    folder = gt_dir / stem(image)
    if not folder.is_dir():
        raise DataError(f"{image}: no ground-truth folder (expected {folder}/000.png); add its masks or move "
                        "the image out of the test set")
    masks = list_images(folder, what="mask", required=False)
    if not masks:
        raise DataError(f"{folder}: ground-truth folder of {image} holds no mask images; add them")
    return masks


def _refuse_orphans(gt_dir: Path, stems: set[str], image_dir: Path) -> None:
    """Every ground-truth folder (or loose file) needs its test image."""
    for name in subfolders(gt_dir):
        if name not in stems and list_files(gt_dir / name):
            raise DataError(f"{gt_dir / name}: masks without a test image (expected {image_dir}/{name}.png); "
                            "remove them or add the image")
    loose = list_images(gt_dir, what="mask", required=False)
    if loose:
        raise DataError(f"{loose[0]}: mask directly in {gt_dir}; LOCO masks go in "
                        "<type>/<image stem>/NNN.png")
