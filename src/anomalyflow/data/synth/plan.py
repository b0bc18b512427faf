"""The plan of the synthetic demo data: which files exist, decided from the seed without drawing anything.

Also the defect types (``defects_config.json``). :func:`planned_files` is cheap, so the workflow calls it
while building the DAG; :mod:`.writer` renders the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from anomalyflow.errors import ConfigError

CATEGORIES: tuple[str, ...] = ("tray", "board")

LOGICAL_DEFECTS: tuple[str, ...] = ("missing_object", "extra_object", "wrong_colour", "swapped_objects")
STRUCTURAL_DEFECTS: tuple[str, ...] = ("scratch", "stain", "hole")

MIN_IMAGE_SIZE = 32

# Integer codes that seed the per-image random streams; fixed forever, since changing one changes the data.
_SPLIT_CODES = {("train", "good"): 0, ("validation", "good"): 1, ("test", "good"): 2,
                ("test", "logical_anomalies"): 3, ("test", "structural_anomalies"): 4}


# ---------------------------------------------------------------------------------------------------
# Defect types and defects_config.json
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefectType:
    """One entry of ``defects_config.json`` (the real MVTec LOCO schema)."""

    defect_name: str
    pixel_value: int
    saturation_threshold: float
    relative_saturation: bool

    def as_json(self) -> dict:
        return {"defect_name": self.defect_name, "pixel_value": self.pixel_value,
                "saturation_threshold": self.saturation_threshold,
                "relative_saturation": self.relative_saturation}


def defect_types(image_size: int = 128) -> tuple[DefectType, ...]:
    """The defect types of every category, as written to ``defects_config.json``.

    As in LOCO, a region the detector must cover entirely to be "found" (a missing, extra, recoloured
    or swapped piece: the mask is the piece or the place it belongs) saturates relative to its own
    area, while thin or fuzzy structural defects saturate at an absolute pixel count, a bit below their
    typical area, so a map need not trace a 2-pixel scratch exactly. Pixel values count down from 255.
    """
    scale = (image_size / 128) ** 2
    return (
        DefectType("missing_object", 255, 1.0, True),
        DefectType("extra_object", 254, 1.0, True),
        DefectType("wrong_colour", 253, 1.0, True),
        DefectType("swapped_objects", 252, 1.0, True),
        DefectType("scratch", 251, round(60 * scale), False),
        DefectType("stain", 250, round(150 * scale), False),
        DefectType("hole", 249, round(60 * scale), False),
    )


def pixel_values(image_size: int) -> dict[str, int]:
    return {d.defect_name: d.pixel_value for d in defect_types(image_size)}


# ---------------------------------------------------------------------------------------------------
# The plan: which files exist, decided without rendering
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """One image to write: where it goes and which defect each of its mask regions is."""

    category: str
    split: str                  # train | validation | test
    folder: str                 # good | logical_anomalies | structural_anomalies
    index: int
    stem_width: int
    defects: tuple[str, ...]    # one defect name per region (= per mask file); () for good images
    entropy: tuple[int, ...]    # seeds this image's own random stream

    @property
    def stem(self) -> str:
        return f"{self.index:0{self.stem_width}d}"

    @property
    def image_path(self) -> str:
        return f"{self.category}/{self.split}/{self.folder}/{self.stem}.png"

    @property
    def mask_paths(self) -> list[str]:
        return [f"{self.category}/ground_truth/{self.folder}/{self.stem}/{j:03d}.png"
                for j in range(len(self.defects))]


def _check_args(seed: int, categories: Iterable[str] | str | None, image_size: int,
                counts: dict[str, int]) -> list[str]:
    """Validate the arguments; a bad one is a config mistake, so name it in one line."""
    def is_int(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    if not is_int(seed) or seed < 0:
        raise ConfigError(f"synth: seed must be a non-negative integer, got {seed!r}")
    if not is_int(image_size) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"synth: image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
    for name, value in counts.items():
        if not is_int(value) or value < 1:
            raise ConfigError(f"synth: {name} must be an integer >= 1, got {value!r}")
    if categories is None:
        return list(CATEGORIES)
    if isinstance(categories, str):
        categories = [categories]
    chosen: list[str] = []
    for name in categories:
        if name not in CATEGORIES:
            raise ConfigError(f"synth: unknown category {name!r} in categories; "
                              f"choose from {', '.join(CATEGORIES)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise ConfigError("synth: categories is empty; leave it out (None) for all categories")
    return chosen


def _balanced(rng: np.random.Generator, options: Sequence[str], n: int) -> list[str]:
    """n choices that use every option equally often (±1), in a seeded order.

    Twelve test images spread evenly over four logical types give each type three examples; drawing
    each independently could leave a type out of a small test set.
    """
    picks: list[str] = []
    while len(picks) < n:
        picks.extend(options[i] for i in rng.permutation(len(options)))
    return picks[:n]


def _plan_category(category: str, seed: int, counts: dict[str, int]) -> list[ImagePlan]:
    cat_index = CATEGORIES.index(category)
    width = max(3, len(str(max(counts.values()) - 1)))

    def plans(split: str, folder: str, n: int, defects: Callable[[int], tuple[str, ...]]) -> list[ImagePlan]:
        code = _SPLIT_CODES[(split, folder)]
        return [ImagePlan(category, split, folder, i, width, defects(i), (seed, cat_index, code, i))
                for i in range(n)]

    # Each kind draws from its own stream, so e.g. the structural plan does not depend on n_test_logical.
    rng_logical = np.random.default_rng([seed, cat_index, 100])
    logical = _balanced(rng_logical, LOGICAL_DEFECTS, counts["n_test_logical"])
    logical_defects = []
    for name in logical:
        # Two pieces missing now and then (as LOCO has "two items missing"); a swap always has two places.
        two_missing = rng_logical.random() < 0.3        # drawn for every image: the stream stays aligned
        regions = 2 if name == "swapped_objects" or (name == "missing_object" and two_missing) else 1
        logical_defects.append((name,) * regions)

    rng_structural = np.random.default_rng([seed, cat_index, 101])
    first = _balanced(rng_structural, STRUCTURAL_DEFECTS, counts["n_test_structural"])
    structural_defects = []
    for name in first:
        if rng_structural.random() < 0.4:
            second = STRUCTURAL_DEFECTS[int(rng_structural.integers(len(STRUCTURAL_DEFECTS)))]
            structural_defects.append((name, second))
        else:
            structural_defects.append((name,))

    return (plans("train", "good", counts["n_train"], lambda i: ())
            + plans("validation", "good", counts["n_validation"], lambda i: ())
            + plans("test", "good", counts["n_test_good"], lambda i: ())
            + plans("test", "logical_anomalies", counts["n_test_logical"], lambda i: logical_defects[i])
            + plans("test", "structural_anomalies", counts["n_test_structural"],
                    lambda i: structural_defects[i]))


def plan_images(seed: int, categories: Iterable[str] | str | None, image_size: int,
          counts: dict[str, int]) -> dict[str, list[ImagePlan]]:
    chosen = _check_args(seed, categories, image_size, counts)
    return {category: _plan_category(category, seed, counts) for category in chosen}


def image_counts(n_train: int, n_validation: int, n_test_good: int, n_test_logical: int,
            n_test_structural: int) -> dict[str, int]:
    return {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good,
            "n_test_logical": n_test_logical, "n_test_structural": n_test_structural}


def category_files(category: str, plans: list[ImagePlan]) -> list[str]:
    files = [f"{category}/README.md", f"{category}/defects_config.json"]
    for plan in plans:
        files.append(plan.image_path)
        files.extend(plan.mask_paths)
    return files


def planned_files(seed: int = 0, categories: Iterable[str] | str | None = None, image_size: int = 128,
                  n_train: int = 40, n_validation: int = 10, n_test_good: int = 12, n_test_logical: int = 12,
                  n_test_structural: int = 12) -> dict[str, list[str]]:
    """The paths, relative to ``out_dir``, that :func:`generate` writes with the same arguments.

    Cheap (no image is drawn), so the workflow can call it while building the DAG. Categories share no
    file (each has its own ``README.md``), so one job per category can declare its list as outputs.
    """
    counts = image_counts(n_train, n_validation, n_test_good, n_test_logical, n_test_structural)
    return {category: category_files(category, plans)
            for category, plans in plan_images(seed, categories, image_size, counts).items()}
