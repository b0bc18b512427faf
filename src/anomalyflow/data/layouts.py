"""Dataset folder layouts → one sample table (see :mod:`anomalyflow.data.table`).

One small module per layout reads a category's folders into row dicts; this module dispatches by the
layout name and holds what they share: listing images, pairing masks with images, the seeded
validation split, and the checks that turn a malformed tree into one clear :class:`DataError`.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from anomalyflow.data.images import IMAGE_EXTENSIONS, check_complete, is_image_name, require_readable
from anomalyflow.data.table import make_table
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
EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)


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


# --- helpers for the layout modules --------------------------------------------------------------


def require_root(root: str | os.PathLike, layout: str) -> Path:
    if root is None or str(root) == "":
        raise ConfigError(f"no dataset root given for layout {layout!r}; set the dataset root in the config")
    base = Path(root)
    if not base.exists():
        raise DataError(f"{root}: dataset root not found; set the dataset's root (the config's datasets.<name>.root, "
                        "or check-data's --root) to the folder that holds the category folders")
    if not base.is_dir():
        raise DataError(f"{root}: dataset root is not a folder")
    return base


def check_category_name(category: str) -> None:
    if not isinstance(category, str) or not category or category.startswith(".") or "/" in category \
            or os.sep in category:
        raise ConfigError(f"category {category!r}: not a folder name (no '/', not starting with '.')")


def subfolders(directory: Path) -> list[str]:
    """Names of the non-hidden folders directly under ``directory``, sorted."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and _is_dir(e))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise DataError(f"{directory}: cannot list the folder ({error.strerror or error})") from None


def categories_with(root: Path, child: str) -> list[str]:
    """Category folders under ``root`` that contain ``child`` (e.g. ``train``)."""
    return [name for name in subfolders(root) if (root / name / child).is_dir()]


def train_categories(root: Path, normal: str) -> list[str]:
    """Categories of a layout with ``<category>/train/<normal>`` folders (MVTec AD, MVTec LOCO, BTAD)."""
    found = categories_with(root, "train")
    if not found:
        raise no_categories(root, f"train/{normal}")
    return found


def train_category_files(root: Path, category: str, example: str, folders: Sequence[str]) -> list[str]:
    """The image files under ``folders`` of one such category: what its sample table is read from."""
    base = require_category(root, category, categories_with(root, "train"), example)
    return [f for folder in folders for f in list_files(base / folder)]


def require_category(root: Path, category: str, found: Iterable[str], example: str) -> Path:
    """``root/category`` or an error listing the categories that are there."""
    path = root / category
    if not path.is_dir():
        names = ", ".join(found) or "none"
        raise DataError(f"{path}: category folder not found; categories found under {root}: {names} "
                        f"(each needs {example})")
    return path


def no_categories(root: Path, example: str) -> DataError:
    return DataError(f"{root}: no categories found; expected folders like {root}/<category>/{example}")


def list_images(directory: Path, *, what: str, required: bool = True) -> list[str]:
    """Image files directly in ``directory`` (by extension, hidden files skipped), sorted by name.

    A missing or image-less folder is an error when ``required``; otherwise an empty list. Entries with
    an image extension are listed even when they are broken links, so the header check reports them.
    """
    if not directory.is_dir():
        if required:
            state = "is not a folder" if directory.exists() else "not found"
            raise DataError(f"{directory}: {what} folder {state}; create it with the {what} images")
        return []
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if is_image_name(e.name) and not _is_dir(e))
    except OSError as error:
        raise DataError(f"{directory}: cannot list the folder ({error.strerror or error})") from None
    if required and not names:
        raise DataError(f"{directory}: no images ({EXTENSIONS_TEXT}) in the {what} folder; add them")
    return [str(directory / name) for name in names]


def list_files(directory: Path) -> list[str]:
    """Every non-hidden file under ``directory`` (recursively) with an image extension."""
    found: list[str] = []
    if not directory.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_image_name(f))
    return found


def require_folder(directory: Path, what: str, needs: str) -> Path:
    """``directory`` if it is a folder, else an error saying what the layout expects there."""
    if not directory.is_dir():
        raise DataError(f"{directory}: {what} folder not found; the layout needs {needs}")
    return directory


def refuse_orphan_mask_folders(mask_root: Path, test_dir: Path, test_types: Sequence[str],
                               ignore: Sequence[str] = ()) -> None:
    """Masks of a type that has no test folder have no image. Folders in ``ignore`` (``good``) are
    skipped: all-black masks of good images, which some converted datasets carry, harm nothing."""
    for mask_type in subfolders(mask_root):
        if mask_type in ignore or mask_type in test_types:
            continue
        masks = list_files(mask_root / mask_type)
        if masks:
            raise DataError(f"{masks[0]}: mask without a test image (there is no folder "
                            f"{test_dir / mask_type}); remove the masks or add the images")


def refuse_loose_images(directory: Path, where: str) -> None:
    """Images lying directly in a folder that should only hold type folders are a user mistake."""
    loose = list_images(directory, what="", required=False)
    if loose:
        raise DataError(f"{loose[0]}: image directly in {directory}; move it into a {where} folder")


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def pair_masks(
    images: Sequence[str],
    mask_dir: Path,
    names: Callable[[str], Sequence[str]],
    *,
    expected: Callable[[str], str],
    required: bool = True,
) -> dict[str, list[str]]:
    """Match each image with the one mask file in ``mask_dir`` whose stem is in ``names(image stem)``.

    Raises for an image without a mask (when ``required``), for an image with two candidate masks,
    and for a mask that no image claims. ``expected(image)`` describes where its mask should be.
    """
    masks = list_images(mask_dir, what="mask", required=False)
    by_stem: dict[str, list[str]] = {}
    for mask in masks:
        by_stem.setdefault(stem(mask), []).append(mask)
    claimed: set[str] = set()
    pairs: dict[str, list[str]] = {}
    for image in images:
        candidates = [m for name in names(stem(image)) for m in by_stem.get(name, [])]
        if len(candidates) > 1:
            raise DataError(f"{image}: several masks match ({', '.join(candidates)}); keep one")
        if not candidates:
            if required:
                raise DataError(f"{image}: no ground-truth mask (expected {expected(image)}); add the mask "
                                "or move the image out of the test set")
            pairs[image] = []
            continue
        claimed.add(candidates[0])
        pairs[image] = candidates
    for mask in masks:
        if mask not in claimed:
            raise DataError(f"{mask}: mask without a test image in {_image_dir_of(images, mask_dir)}; "
                            "remove the mask or add its image")
    return pairs


def _image_dir_of(images: Sequence[str], mask_dir: Path) -> str:
    return os.path.dirname(images[0]) if images else f"the test folder matching {mask_dir.name}"


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


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop is not a folder
        return False
