"""A dataset's folder tree on disk, as the layout readers see it: categories, image and mask files, masks paired
with their images, and the checks that turn a malformed tree into one clear :class:`DataError` naming the
folder or file (used by the layout modules, :mod:`anomalyflow.data.layouts`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from anomalyflow.data.images import IMAGE_EXTENSIONS, is_image_name
from anomalyflow.errors import ConfigError, DataError

EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)


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


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop is not a folder
        return False
