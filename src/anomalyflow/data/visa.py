"""The VisA layout, read through its official one-class split file.

``<root>/split_csv/1cls.csv`` (shipped with the VisA download, amazon-science/spot-diff) has the
columns ``object, split, label, image, mask``: ``object`` is the category (``candle`` …), ``split``
is ``train`` or ``test``, ``label`` is ``normal`` or ``anomaly``, and ``image``/``mask`` are paths
relative to the root, e.g. ``candle/Data/Images/Normal/0000.JPG`` and
``candle/Data/Masks/Anomaly/000.png`` (empty for normal images). The official ``prepare_data.py``
treats every label other than ``normal`` as anomalous and binarises masks as nonzero = defect, which
:func:`~anomalyflow.data.images.load_mask` does too. The split file has no defect types, so anomalous
images get the type ``anomaly``. The train rows (normal only) are split into train/validation with the
seeded PUAD rule. Images not listed in the file are not part of the dataset.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from anomalyflow.data.layouts import ReadOptions, sample, train_rows
from anomalyflow.errors import DataError

SPLIT_FILE = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
NORMAL = "normal"
DEFECT_TYPE = "anomaly"


def list_categories(root: Path) -> list[str]:
    categories = sorted({row["object"] for _, row in _read_split_file(root)})
    if not categories:
        raise DataError(f"{root / SPLIT_FILE}: lists no images")
    return categories


def read_rows(root: Path, category: str, options: ReadOptions) -> list[dict[str, Any]]:
    csv_path = root / SPLIT_FILE
    entries = [(line, row) for line, row in _read_split_file(root) if row["object"] == category]
    if not entries:
        raise DataError(f"{csv_path}: no rows for category {category!r}; categories listed: "
                        f"{', '.join(list_categories(root))}")
    train: list[str] = []
    rows: list[dict[str, Any]] = []
    for line, row in entries:
        where = f"{csv_path}: line {line}"
        image = _existing(root, row["image"], where, "image")
        normal = row["label"].strip().lower() == NORMAL
        split = row["split"].strip().lower()
        if split == "train":
            if not normal:
                raise DataError(f"{where}: anomalous image {image} in the train split; the one-class setup "
                                "trains on normal images only")
            train.append(image)
        elif split == "test":
            if normal:  # a mask listed for a normal image would be all background; it is not needed
                rows.append(sample(options, category, image, "test"))
            else:
                if not row["mask"].strip():
                    raise DataError(f"{where}: anomalous test image {image} has no mask path; add it to the "
                                    "mask column")
                mask = _existing(root, row["mask"], where, "mask")
                rows.append(sample(options, category, image, "test", DEFECT_TYPE, "structural", [mask]))
        else:
            raise DataError(f"{where}: unknown split {row['split']!r}; expected train or test")
    if not train:
        raise DataError(f"{csv_path}: no train rows for category {category!r}; add normal training images")
    if not rows:
        raise DataError(f"{csv_path}: no test rows for category {category!r}; add test images")
    return train_rows(options, category, train) + rows


def category_files(root: Path, category: str) -> list[str]:
    files = [str(root / SPLIT_FILE)]
    found = False
    for _, row in _read_split_file(root):
        if row["object"] != category:
            continue
        found = True
        files.append(str(root / row["image"].strip()))
        if row["mask"].strip() and row["label"].strip().lower() != NORMAL:
            files.append(str(root / row["mask"].strip()))
    if not found:
        raise DataError(f"{root / SPLIT_FILE}: no rows for category {category!r}; categories listed: "
                        f"{', '.join(list_categories(root))}")
    return files


def _read_split_file(root: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs of the split file, with its header checked."""
    path = root / SPLIT_FILE
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DataError(f"{path}: lacks the column(s) {', '.join(missing)}; VisA's 1cls.csv has "
                                f"{', '.join(COLUMNS)}")
            reader.fieldnames = header
            rows = []
            for row in reader:
                if any(row.get(c) is None for c in COLUMNS):
                    raise DataError(f"{path}: line {reader.line_num} has fewer than {len(COLUMNS)} fields")
                rows.append((reader.line_num, {c: row[c].strip() for c in COLUMNS}))
            return rows
    except FileNotFoundError:
        raise DataError(f"{path}: VisA split file not found; the visa layout needs <root>/split_csv/1cls.csv "
                        "from the VisA download") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot read the split file ({error})") from None


def _existing(root: Path, relative: str, where: str, what: str) -> str:
    path = root / relative.strip()
    # A link that exists but cannot be followed is left to the header check, which says why.
    if not relative.strip() or not (path.is_file() or path.is_symlink()):
        raise DataError(f"{where}: {what} {path} not found; check the file or the root folder")
    return str(path)
