"""The ``folder`` layout: a user's own folders, one category per folder under the root.

Options (the ``folder`` mapping; paths relative to ``<root>/<category>``, absolute paths allowed):

- ``train``          normal training images (default ``train/good``)
- ``test_good``      normal test images (default ``test/good``, which may be absent; another folder
                     named here must exist)
- ``test_anomalous`` list of folders of defective test images (default: every folder under ``test/``
                     other than ``test_good``); the folder's name is the defect type
- ``masks``          mask root: the mask of ``<anomalous folder name>/<stem>.*`` is
                     ``<masks>/<folder name>/<stem>_mask.*`` or ``<masks>/<folder name>/<stem>.*``.
                     Default: ``ground_truth`` if that folder exists. ``None``/``""``: no masks, so
                     pixel metrics are skipped later (masks are optional for this layout).
- ``validation``     folder of normal validation images (default: the seeded split of ``train``)

Every defect is structural. A test set with only good or only defective images is read (the metrics
refuse it later, and ``check-data`` warns), but at least one test image is required.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anomalyflow.data.layouts import ReadOptions, require_test_images, sample, train_rows
from anomalyflow.data.tree import list_files, list_images, no_categories, pair_masks, require_category, stem, subfolders
from anomalyflow.errors import ConfigError, DataError

DEFAULTS: dict[str, Any] = {"train": "train/good", "test_good": "test/good", "test_anomalous": None,
                            "masks": "ground_truth", "validation": None}
_AUTO = object()


def options_of(folder: Mapping[str, Any] | None) -> dict[str, Any]:
    """The folder options with defaults filled in and types checked (``masks`` absent → ``_AUTO``)."""
    given = dict(folder or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"folder.{unknown[0]}: unknown option; the folder layout takes "
                          f"{', '.join(DEFAULTS)}")
    options = {**DEFAULTS, **given}
    for key in ("train", "test_good"):
        if not isinstance(options[key], str) or not options[key]:
            raise ConfigError(f"folder.{key}: must be a folder path, got {options[key]!r}")
    for key in ("masks", "validation"):
        if options[key] is not None and not isinstance(options[key], str):
            raise ConfigError(f"folder.{key}: must be a folder path or null, got {options[key]!r}")
    anomalous = options["test_anomalous"]
    if isinstance(anomalous, str):
        anomalous = [anomalous]
    if anomalous is not None and (not isinstance(anomalous, Sequence)
                                  or not all(isinstance(a, str) and a for a in anomalous)):
        raise ConfigError(f"folder.test_anomalous: must be a list of folder paths, got {anomalous!r}")
    options["test_anomalous"] = None if anomalous is None else list(anomalous)
    options["masks"] = _AUTO if "masks" not in given else (options["masks"] or None)
    return options


def list_categories(root: Path, folder: Mapping[str, Any] | None = None) -> list[str]:
    train = options_of(folder)["train"]
    found = [name for name in subfolders(root) if (root / name / train).is_dir()]
    if not found:
        raise no_categories(root, train)
    return found


def read_rows(root: Path, category: str, options: ReadOptions) -> list[dict[str, Any]]:
    opts = options_of(options.folder)
    base = _category(root, category, opts)
    train = list_images(base / opts["train"], what="training (normal)")
    validation = None
    if opts["validation"]:
        validation = list_images(base / opts["validation"], what="validation (normal)")
    rows = train_rows(options, category, train, validation)

    good_dir = base / opts["test_good"]
    # A test_good folder other than the default must exist; the default may be absent (a test set of
    # defects only is legal). Compared by value, since the config schema fills in the defaults.
    required = opts["test_good"] != DEFAULTS["test_good"]
    rows += [sample(options, category, p, "test")
             for p in list_images(good_dir, what="good test", required=required)]
    mask_root = _mask_root(base, opts)
    anomalous_names: list[str] = []
    for anomalous_dir in _anomalous_dirs(base, opts):
        images = list_images(anomalous_dir, what="anomalous test",
                             required=opts["test_anomalous"] is not None)
        name = anomalous_dir.name
        anomalous_names.append(name)
        masks: dict[str, list[str]] = {image: [] for image in images}
        if mask_root is not None:
            mask_dir = mask_root / name
            masks = pair_masks(images, mask_dir, lambda s: (f"{s}_mask", s),
                               expected=lambda image, d=mask_dir: f"{d / stem(image)}_mask.png or "
                               f"{d / stem(image)}.png")
        rows += [sample(options, category, p, "test", name, "structural", masks[p]) for p in images]
    if mask_root is not None:
        for mask_type in subfolders(mask_root):
            stray = list_files(mask_root / mask_type)
            if mask_type not in anomalous_names and mask_type != good_dir.name and stray:
                raise DataError(f"{stray[0]}: mask without a test image (no anomalous test folder named "
                                f"{mask_type!r}); remove the masks or list the folder in test_anomalous")
    require_test_images(rows, base / "test")
    return rows


def category_files(root: Path, category: str, folder: Mapping[str, Any] | None = None) -> list[str]:
    opts = options_of(folder)
    base = _category(root, category, opts)
    dirs = [base / opts["train"], base / opts["test_good"], *_anomalous_dirs(base, opts)]
    if opts["validation"]:
        dirs.append(base / opts["validation"])
    files = [f for d in dirs for f in list_images(d, what="image", required=False)]
    mask_root = _mask_root(base, opts)
    return files + (list_files(mask_root) if mask_root is not None else [])


def _category(root: Path, category: str, opts: dict[str, Any]) -> Path:
    found = [name for name in subfolders(root) if (root / name / opts["train"]).is_dir()]
    return require_category(root, category, found, opts["train"])


def _anomalous_dirs(base: Path, opts: dict[str, Any]) -> list[Path]:
    if opts["test_anomalous"] is not None:
        return [base / d for d in opts["test_anomalous"]]
    # Default: every folder beside test_good (normally the folders under test/ other than test/good).
    good = base / opts["test_good"]
    return [good.parent / name for name in subfolders(good.parent) if name != good.name]


def _mask_root(base: Path, opts: dict[str, Any]) -> Path | None:
    if opts["masks"] is _AUTO:
        default = base / DEFAULTS["masks"]
        return default if default.is_dir() else None
    if opts["masks"] is None:
        return None
    mask_root = base / opts["masks"]
    if not mask_root.is_dir():
        raise DataError(f"{mask_root}: mask folder (folder.masks) not found; create it or set masks to null")
    return mask_root
