"""The BTAD (beanTech Anomaly Detection) layout.

Categories ``01``, ``02``, ``03``; under each: ``train/ok`` (normal training images), ``test/ok``
(normal test images), ``test/ko`` (defective) and ``ground_truth/ko/<stem>.<ext>``: a mask has its
image's stem, but the extension may differ (images are ``.bmp`` or ``.png`` depending on the category,
masks ``.png`` or ``.bmp``), so masks are matched by stem. ``ok`` is reported as the defect type
``good``, ``ko`` as ``ko`` (BTAD has no finer defect types); every defect is structural. The normal
training images are split with the seeded PUAD rule. PNI's trick of training ``03`` on only the first
half of its train list (docs/methods.md C1) is a PNI quirk, not part of the dataset, and is not applied.
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
from anomalyflow.errors import DataError

EXAMPLE = "train/ok and test/{ok,ko}"
NORMAL, DEFECTIVE = "ok", "ko"


def list_categories(root: Path) -> list[str]:
    return train_categories(root, NORMAL)


def read_rows(root: Path, category: str, options: ReadOptions) -> list[dict[str, Any]]:
    base, rows, test_dir = train_then_test(root, category, options, normal=NORMAL, example=EXAMPLE,
                                           test_folders="test/ok and test/ko", loose="test/ok or test/ko")
    for name in subfolders(test_dir):
        if name not in (NORMAL, DEFECTIVE):
            raise DataError(f"{test_dir / name}: unknown test folder for the btad layout; expected ok and ko")
    rows += [sample(options, category, p, "test")
             for p in list_images(test_dir / NORMAL, what="test", required=False)]
    defective = list_images(test_dir / DEFECTIVE, what="test", required=False)
    mask_dir = base / "ground_truth" / DEFECTIVE
    masks = pair_masks(defective, mask_dir, lambda s: (s,),
                       expected=lambda image: str(mask_dir / f"{stem(image)}.png"))
    rows += [sample(options, category, p, "test", DEFECTIVE, "structural", masks[p]) for p in defective]
    require_test_images(rows, test_dir)
    refuse_orphan_mask_folders(base / "ground_truth", test_dir, [DEFECTIVE],
                               ignore=(NORMAL,))
    return rows


def category_files(root: Path, category: str) -> list[str]:
    return train_category_files(root, category, EXAMPLE, (f"train/{NORMAL}", "test", "ground_truth"))
