"""Dataset folder layouts → one sample table (see :mod:`anomalyflow.data.table`).

One small module per layout reads a category's folders into row dicts; this module dispatches by the
layout name and holds the rows they share (one per image) and the seeded validation split. Listing a
category's folders, pairing masks with images and the checks that turn a malformed tree into one clear
:class:`DataError` are :mod:`anomalyflow.data.tree`.

======================  ===========================================================================
layout                  folders under ``<root>/<category>/`` (module)
======================  ===========================================================================
``mvtec_ad``            ``train/good``, ``test/<type>``, ``ground_truth/<type>/<stem>_mask.png``
                        (:mod:`~anomalyflow.data.mvtec_ad`)
``mvtec_loco``/``loco`` ``train/good``, ``validation/good``, ``test/{good,logical_anomalies,
                        structural_anomalies}``, ``ground_truth/<type>/<stem>/NNN.png``,
                        ``defects_config.json`` (:mod:`~anomalyflow.data.mvtec_loco`)
``visa``                ``<root>/split_csv/1cls.csv`` lists every image (:mod:`~anomalyflow.data.visa`)
``btad``                ``train/ok``, ``test/{ok,ko}``, ``ground_truth/ko/<stem>.{png,bmp}``
                        (:mod:`~anomalyflow.data.btad`)
``folder``              a user's own folders, configurable (:mod:`~anomalyflow.data.folder`)
======================  ===========================================================================

Paths in the table are the root as given joined with the relative file names (not resolved), so a
relative root gives relative paths and a symlinked dataset keeps its link.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from anomalyflow.data.images import check_complete, require_readable
from anomalyflow.data.table import make_table
from anomalyflow.data.tree import (
    categories_with,
    check_category_name,
    list_images,
    refuse_loose_images,
    require_category,
    require_folder,
    require_root,
)
from anomalyflow.errors import ConfigError, DataError

#: layout name → module in ``anomalyflow.data`` (``loco`` is an alias of ``mvtec_loco``).
LAYOUT_MODULES = {
    "mvtec_ad": "mvtec_ad",
    "mvtec_loco": "mvtec_loco",
    "loco": "mvtec_loco",
    "visa": "visa",
    "btad": "btad",
    "folder": "folder",
}
LAYOUTS = tuple(LAYOUT_MODULES)
@dataclass(frozen=True)
class ReadOptions:
    """What a layout module needs besides the root and category."""

    dataset: str
    validation_fraction: float = 0.15
    validation_seed: int = 42
    folder: Mapping[str, Any] | None = None


# --- public API ----------------------------------------------------------------------------------


def read_samples_from_layout(
    layout: str,
    root: str | os.PathLike,
    category: str,
    *,
    dataset: str | None = None,
    validation_fraction: float = 0.15,
    validation_seed: int = 42,
    folder: Mapping[str, Any] | None = None,
    check_sizes: bool = True,
) -> pd.DataFrame:
    """Read one category of a dataset folder into a validated sample table.

    ``validation_fraction``/``validation_seed`` split the normal training images where the layout has
    no validation set of its own (all but MVTec LOCO and a ``folder`` with ``validation``), with the
    PUAD rule (:func:`split_validation`). ``folder`` configures the ``folder`` layout and is ignored
    by the others (the config schema fills it in for every dataset). With
    ``check_sizes`` every image's header is read (an unreadable file fails here, not mid-training)
    and each mask must have its image's size; without it nothing is opened.
    """
    module = layout_module(layout)
    _check_fraction(validation_fraction)
    base = require_root(root, layout)
    check_category_name(category)
    options = ReadOptions(dataset=dataset or layout, validation_fraction=validation_fraction,
                          validation_seed=validation_seed, folder=folder)
    rows = module.read_rows(base, category, options)
    if check_sizes:
        check_headers(rows)
    return make_table(rows)


def list_categories(layout: str, root: str | os.PathLike,
                    folder: Mapping[str, Any] | None = None) -> list[str]:
    """The categories found under ``root`` for this layout, sorted."""
    module = layout_module(layout)
    base = require_root(root, layout)
    if module.__name__.endswith(".folder"):
        return module.list_categories(base, folder)
    return module.list_categories(base)


def category_files(layout: str, root: str | os.PathLike, category: str,
                   folder: Mapping[str, Any] | None = None) -> list[str]:
    """Every file that defines a category's data (images, masks, csv/json), sorted, nothing opened (but
    each must exist and be readable: a broken link, link loop or chmod-000 file raises :class:`DataError`).

    The workflow lists these as the inputs of the category's data rule, so Snakemake reruns that
    category (and only that one) when a file is added, removed or changed.
    """
    module = layout_module(layout)
    base = require_root(root, layout)
    check_category_name(category)
    if module.__name__.endswith(".folder"):
        files = module.category_files(base, category, folder)
    else:
        files = module.category_files(base, category)
    files = sorted({str(f) for f in files})
    for file in files:
        # Found before Snakemake meets them: a broken link or link loop would be a "missing input" with no
        # remedy, and Snakemake itself fails on an unreadable input when it records the job's metadata.
        require_readable(file)
    return files


def files_fingerprint(files: Iterable[str | os.PathLike], root: str | os.PathLike) -> str:
    """A short digest of the files' names (relative to ``root``), sizes and modification times.

    The workflow passes it to a category's ``samples`` job as a parameter instead of listing hundreds of
    images as inputs (which Snakemake prints for every job): adding, removing, renaming or rewriting one
    file changes it, so Snakemake's params trigger reruns that category, as the input trigger would. Only
    metadata is read, like make and rsync do; a dataset moved with its times kept (``cp -p``, ``rsync -t``)
    keeps its fingerprint.
    """
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(map(str, files)):
        info = os.stat(file)
        digest.update(f"{os.path.relpath(file, root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def layout_module_name(layout: str) -> str:
    """The full name of the module that reads ``layout``, e.g. ``anomalyflow.data.mvtec_ad``.

    Loaded by name (:func:`layout_module`), so no import statement names it: the workflow adds it to the
    code inputs of the job that reads a ``layout`` dataset, and editing that reader reruns exactly the
    sample tables of that layout's datasets. Raises :class:`ConfigError` for an unknown layout.
    """
    try:
        return f"anomalyflow.data.{LAYOUT_MODULES[layout]}"
    except (KeyError, TypeError):
        raise ConfigError(f"unknown dataset layout {layout!r}; use one of {', '.join(LAYOUTS)}") from None


def layout_module(layout: str) -> ModuleType:
    """The module that reads ``layout`` (imported on first use; modules import helpers from here)."""
    return importlib.import_module(layout_module_name(layout))


def canonical_layout(layout: str) -> str:
    """``loco`` → ``mvtec_loco``; other names unchanged (after checking they are known)."""
    return layout_module(layout).__name__.rsplit(".", 1)[-1]


# --- the validation split ------------------------------------------------------------------------


def split_validation(paths: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split normal training images into (train, validation) exactly like the official PUAD code.

    PUAD (LeapMind/PUAD, MVTec AD): sort the image list, draw ``torch.randperm(n)`` from a
    ``torch.Generator`` seeded with ``seed``, take the first ``n - int(fraction * n)`` permuted
    indices for training and the rest for validation. ``int`` truncates, as in the official code.
    Both lists are returned in permutation order; the table sorts them anyway.
    """
    _check_fraction(fraction)
    ordered = sorted(paths)
    n = len(ordered)
    n_validation = int(fraction * n)
    if n_validation == 0:
        return ordered, []
    import torch  # lazily: reading a layout without a split should not pay for importing torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    n_train = n - n_validation
    return [ordered[i] for i in order[:n_train]], [ordered[i] for i in order[n_train:]]


def _check_fraction(fraction: float) -> None:
    if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 <= fraction < 1:
        raise ConfigError(f"validation_fraction: {fraction!r} is not a fraction in [0, 1)")




def sample(options: ReadOptions, category: str, path: str, split: str, defect_type: str = "good",
           anomaly_kind: str = "none", mask_paths: Sequence[str] = ()) -> dict[str, Any]:
    """One table row."""
    return {
        "dataset": options.dataset,
        "category": category,
        "path": str(path),
        "split": split,
        "label": 0 if anomaly_kind == "none" else 1,
        "defect_type": defect_type,
        "anomaly_kind": anomaly_kind,
        "mask_paths": list(mask_paths),
    }


def train_rows(options: ReadOptions, category: str, train: Sequence[str],
               validation: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows for the normal images: ``validation`` given (a provided set) or the seeded split."""
    if validation is None:
        train, validation = split_validation(train, options.validation_fraction, options.validation_seed)
    return [sample(options, category, p, "train") for p in train] + \
        [sample(options, category, p, "validation") for p in validation]


def train_then_test(root: Path, category: str, options: ReadOptions, *, normal: str, example: str,
                    test_folders: str, loose: str) -> tuple[Path, list[dict[str, Any]], Path]:
    """The start of a layout of ``train/<normal>`` and ``test/<type>`` folders (MVTec AD, BTAD): the category's
    folder, the rows of its normal training images (the seeded validation split taken out) and its test folder,
    checked (``test_folders`` and ``loose`` say what belongs there)."""
    base = require_category(root, category, categories_with(root, "train"), example)
    rows = train_rows(options, category, list_images(base / "train" / normal, what="training (normal)"))
    test_dir = require_folder(base / "test", "test", test_folders)
    refuse_loose_images(test_dir, loose)
    return base, rows, test_dir


def require_test_images(rows: Iterable[dict[str, Any]], test_dir: Path | str) -> None:
    if not any(row["split"] == "test" for row in rows):
        raise DataError(f"{test_dir}: no test images; add test images (good and/or defective)")


def check_headers(rows: Iterable[dict[str, Any]]) -> None:
    """Read every image's header and end (fails on unreadable or truncated files) and compare each mask's
    size with its image's."""
    for row in rows:
        size = check_complete(row["path"])
        for mask in row["mask_paths"]:
            mask_size = check_complete(mask)
            if mask_size != size:
                raise DataError(f"{mask}: mask is {mask_size[0]}x{mask_size[1]} but its image {row['path']} "
                                f"is {size[0]}x{size[1]}; masks must have their image's size")


