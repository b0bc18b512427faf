"""The MVTec AD layout.

``<root>/<category>/train/good/*.png`` (normal training images), ``test/<type>/*.png`` with ``<type>``
``good`` or a defect name, and ``ground_truth/<type>/<stem>_mask.png`` for every defective test image.
There is no validation folder: the normal training images are split with the PUAD rule
(:func:`~anomalyflow.data.layouts.split_validation`, 15 % with seed 42 by default; EfficientAD's own
script takes 10 % with ``random_split`` instead, see docs/methods.md A7). Every defect is structural.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomalyflow.data.layouts import ReadOptions, require_test_images, sample, train_then_test
from anomalyflow.data.tree import (
    list_images,
    pair_masks,
    refuse_orphan_mask_folders,
    stem,
    subfolders,
    train_categories,
    train_category_files,
)

EXAMPLE = "train/good and test/<type>"
GOOD = "good"


def list_categories(root: Path) -> list[str]:
    return train_categories(root, GOOD)


def read_rows(root: Path, category: str, options: ReadOptions) -> list[dict[str, Any]]:
    base, rows, test_dir = train_then_test(root, category, options, normal=GOOD, example=EXAMPLE,
                                           test_folders="test/good and test/<defect> folders", loose="test/<type>")
    test_types = subfolders(test_dir)
    for defect_type in test_types:
        images = list_images(test_dir / defect_type, what="test", required=False)
        if defect_type == GOOD:
            rows += [sample(options, category, p, "test") for p in images]
            continue
        mask_dir = base / "ground_truth" / defect_type
        # MVTec AD names a mask after its image: test/<type>/000.png -> ground_truth/<type>/000_mask.png
        masks = pair_masks(images, mask_dir, lambda s: (f"{s}_mask",),
                           expected=lambda image, d=mask_dir: str(d / f"{stem(image)}_mask.png"))
        rows += [sample(options, category, p, "test", defect_type, "structural", masks[p]) for p in images]
    require_test_images(rows, test_dir)
    refuse_orphan_mask_folders(base / "ground_truth", test_dir, test_types, ignore=(GOOD,))
    return rows


def category_files(root: Path, category: str) -> list[str]:
    return train_category_files(root, category, EXAMPLE, (f"train/{GOOD}", "test", "ground_truth"))
