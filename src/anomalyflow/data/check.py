"""``anomalyflow check-data``: read a dataset folder the way the workflow will and report what is there.

Its default mode reads every image's header and checks that PNG, JPEG and BMP files are complete
(their end marker or declared length), which catches truncated files at the cost of one extra small
read per file. The report is a small aligned table of image and mask counts per category, split and defect type,
followed by warning lines for things that are legal in the table but will hurt later (a test set
without good or without defective images makes image AUROC undefined; an empty validation split
leaves nothing for the quantiles). The first real problem raises :class:`DataError` (one line).
With ``full=True`` every image and mask is decoded, which also catches truncated files and, for
MVTec LOCO, mask pixel values missing from ``defects_config.json``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from anomalyflow.data.images import decode_image, load_mask, load_mask_channels
from anomalyflow.data.layouts import canonical_layout, list_categories, read_samples_from_layout
from anomalyflow.data.table import write_samples
from anomalyflow.errors import DataError

HEADER = ("category", "split", "defect_type", "kind", "images", "masks")


def check_data(layout: str, root: str | os.PathLike, category: str | None = None, full: bool = False) -> str:
    """Read one category (or all found under ``root``) and return a printable report."""
    categories = [category] if category else list_categories(layout, root)
    lines: list[tuple[str, ...]] = []
    warnings: list[str] = []
    for name in categories:
        table = read_samples_from_layout(layout, root, name, check_sizes=True)
        if full:
            decode_all(layout, root, name, table)
        lines += _count_lines(name, table)
        warnings += _warnings(name, table)
    checked = "decoded every image and mask" if full else "read every image header and file end; --full decodes"
    report = [f"{canonical_layout(layout)} dataset at {root}: {len(categories)} "
              f"categor{'y' if len(categories) == 1 else 'ies'} ({checked})", "", *_aligned(lines)]
    if warnings:
        report += ["", *warnings]
    return "\n".join(report)


def _count_lines(category: str, table: pd.DataFrame) -> list[tuple[str, ...]]:
    lines = []
    n_masks = table["mask_paths"].map(len)
    for (split, defect_type, kind), group in table.groupby(["split", "defect_type", "anomaly_kind"],
                                                           sort=False):
        lines.append((category, split, defect_type, kind, str(len(group)), str(int(n_masks[group.index].sum()))))
    lines.append((category, "total", "", "", str(len(table)), str(int(n_masks.sum()))))
    return lines


def _warnings(category: str, table: pd.DataFrame) -> list[str]:
    test = table.loc[table["split"] == "test"]
    found = []
    if not (test["label"] == 0).any():
        found.append(f"warning: {category}: the test set has no good images; image AUROC will be undefined")
    if not (test["label"] == 1).any():
        found.append(f"warning: {category}: the test set has no anomalous images; image AUROC will be undefined")
    elif not test.loc[test["label"] == 1, "mask_paths"].map(len).any():
        found.append(f"warning: {category}: no ground-truth masks; pixel metrics will be skipped")
    if not (table["split"] == "validation").any():
        found.append(f"warning: {category}: the validation split is empty (too few training images for the "
                     "validation fraction); methods that need validation images will stop")
    return found


def _aligned(lines: Sequence[tuple[str, ...]]) -> list[str]:
    rows = [HEADER, *lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    numeric = {HEADER.index("images"), HEADER.index("masks")}
    return ["  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                      for i, cell in enumerate(row)).rstrip() for row in rows]


def decode_all(layout: str, root: str | os.PathLike, category: str, table: pd.DataFrame, *,
               workers: int = 1, progress: bool = False) -> None:
    """Decode every image and mask of a sample table, ``workers`` files at a time (threads: PIL releases
    the GIL while it decodes), and check each mask against its decoded image and, for MVTec LOCO, the
    pixel values of ``defects_config.json``.

    Raises :class:`DataError` for the first bad row in table order (one line naming the file), so the
    message does not depend on thread timing.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    pixel_values: set[int] | None = None
    if canonical_layout(layout) == "mvtec_loco":
        from anomalyflow.data.mvtec_loco import read_defects_config

        pixel_values = {entry["pixel_value"] for entry in read_defects_config(root, category)}
    rows = list(zip(table["path"], table["mask_paths"], strict=True))
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool, \
            tqdm(total=len(rows), desc=f"{category}: decoding images", unit="img", disable=not progress) as bar:
        for _ in pool.map(lambda row: _decode_row(*row, pixel_values), rows):
            bar.update()


def _decode_row(path: str, masks: list[str], pixel_values: set[int] | None) -> None:
    size = decode_image(path)
    if not masks:
        return
    if pixel_values is None:
        shape = load_mask(masks).shape
    else:
        channels, values = load_mask_channels(masks)
        shape = channels.shape[1:]
        for mask, value in zip(masks, values, strict=True):
            if value not in pixel_values:
                raise DataError(f"{mask}: defect pixel value {value} is not in defects_config.json "
                                f"(values there: {', '.join(map(str, sorted(pixel_values)))})")
    if (shape[1], shape[0]) != size:
        raise DataError(f"{masks[0]}: mask is {shape[1]}x{shape[0]} but its image {path} is "
                        f"{size[0]}x{size[1]}")


def verified_samples(layout: str, root: str | os.PathLike, category: str, *, workers: int = 1,
                     progress: bool = True, **read_options) -> pd.DataFrame:
    """A category's sample table (:func:`~anomalyflow.data.layouts.read_samples_from_layout`, keyword
    ``read_options``) after every image and mask in it was decoded (:func:`decode_all`).

    The workflow's first job per category calls this, so a truncated or corrupt file anywhere (train,
    validation or test) stops that category's chain in its first minute, not at the first model's fit.
    """
    table = read_samples_from_layout(layout, root, category, check_sizes=True, **read_options)
    decode_all(layout, root, category, table, workers=workers, progress=progress)
    return table


def write_verified_samples(layout: str, root: str | os.PathLike, category: str, out_path: str | os.PathLike, *,
                           dataset: str, validation: Mapping[str, Any], folder: Mapping[str, Any] | None,
                           workers: int = 1) -> None:
    """The workflow's first job of a category: :func:`verified_samples` written to ``out_path`` (``samples.csv``).

    ``validation`` is the dataset's ``validation`` block (``fraction``, ``seed``; the schema fills them in),
    ``folder`` its ``folder`` block (the ``folder`` layout's paths).
    """
    table = verified_samples(layout, root, category, workers=workers, dataset=dataset,
                             validation_fraction=validation["fraction"], validation_seed=validation["seed"],
                             folder=folder)
    write_samples(table, out_path)
