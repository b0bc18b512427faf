"""Rendering and writing the synthetic demo data: one planned image drawn, each category written whole."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from anomalyflow.atomic import atomic_path
from anomalyflow.data.synth.anomalies import apply_logical, apply_structural
from anomalyflow.data.synth.drawing import Canvas, draw_piece
from anomalyflow.data.synth.plan import ImagePlan, category_files, defect_types, image_counts, pixel_values, plan_images
from anomalyflow.data.synth.scenes import SCENES

# ---------------------------------------------------------------------------------------------------
# Rendering one planned image
# ---------------------------------------------------------------------------------------------------


def render(plan: ImagePlan, image_size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw one planned image: (H, W, 3) uint8 RGB and one uint8 mask per region (0 / pixel_value)."""
    c = Canvas(image_size)
    rng = np.random.default_rng(list(plan.entropy))
    scene = SCENES[plan.category](c, rng)
    masks: list[np.ndarray] = []
    if plan.folder == "logical_anomalies":
        masks = apply_logical(c, scene, plan.defects[0], len(plan.defects), plan.category, rng)
    image = scene.background
    for piece in scene.pieces:
        image = draw_piece(image, c, piece, scene.light)
    if plan.folder == "structural_anomalies":
        image, masks = apply_structural(image, c, scene, plan.defects, rng)
    image = image * scene.lighting
    image = image + rng.normal(0, 0.012, size=image.shape).astype(np.float32)    # sensor noise
    values = pixel_values(image_size)
    out_masks = [(mask * values[name]).astype(np.uint8)
                 for mask, name in zip(masks, plan.defects, strict=True)]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), out_masks


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


_RULES = {
    "tray": """A grey plastic tray with 2×3 compartments on a woven cloth. Every compartment holds exactly one
piece, lying anywhere inside it. Loaded the standard way the pieces are, row by row: red disc, yellow
square, purple diamond / orange diamond, green square, blue disc. The tray is symmetric and is also loaded
turned by 180 degrees, which exchanges red and blue discs, yellow and green squares, purple and orange
diamonds. So each compartment holds one of two colours of its shape, and only the whole tray says
which one is right.""",
    "board": """A green circuit board with an IC, two capacitors (blue, brown), a connector and a strip of six
pads. Three LEDs, red, green and blue from left to right, sit on three neighbouring pads; which three
varies between boards. So every pad is sometimes bare and sometimes carries an LED, and only the whole
strip says whether the count and order are right.""",
}

_ANOMALIES = {
    "tray": ("a compartment left empty (sometimes two); the mask covers the compartment",
             "a second piece of the compartment's own kind in a compartment",
             "a piece in its partner's colour, which that compartment holds in a turned tray: two pieces "
             "of one colour and none of the other",
             "a piece and its partner exchanged, as if half the tray were turned"),
    "board": ("an LED missing (sometimes two), its pad bare",
              "a fourth LED on the bare pad next to the strip, a copy of its neighbour",
              "an LED in another LED's colour",
              "two LEDs exchanged"),
}


def _readme(category: str, seed: int, image_size: int, counts: dict[str, int]) -> str:
    missing, extra, colour, swapped = _ANOMALIES[category]
    return f"""# anomalyflow synthetic demo data: `{category}`

**Synthetic images**, drawn with numpy by `anomalyflow.data.synth.generate` (seed {seed},
{image_size}×{image_size} px), not photographs of real products. They follow the MVTec LOCO AD folder
layout so that the anomalyflow demo runs offline in minutes: {counts['n_train']} train,
{counts['n_validation']} validation, {counts['n_test_good']} good test, {counts['n_test_logical']} logical
and {counts['n_test_structural']} structural anomaly test images.

## Normal images

{_RULES[category]}

Normal images also vary in position, lighting strength and direction (within 20 degrees), brightness,
white balance, texture and noise.

## Anomalies

- `test/logical_anomalies` (every patch looks normal; the image as a whole breaks the rule):
  `missing_object`: {missing}; `extra_object`: {extra}; `wrong_colour`: {colour};
  `swapped_objects`: {swapped} (one mask per piece).
- `test/structural_anomalies`, one or two per image: `scratch` (a thin curved line), `stain` (an
  irregular blob), `hole` (a dark pit with a pale rim).

`ground_truth/<type>/<stem>/NNN.png` holds one mask per defect region: the defect type's `pixel_value`
from `defects_config.json` inside the region, 0 outside (as in MVTec LOCO AD).
"""


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def generate(out_dir: str | os.PathLike, seed: int = 0, categories: Iterable[str] | str | None = None,
             image_size: int = 128, n_train: int = 40, n_validation: int = 10, n_test_good: int = 12,
             n_test_logical: int = 12, n_test_structural: int = 12) -> dict[str, list[str]]:
    """Write the synthetic dataset under ``out_dir``; return, per category, the paths written.

    The paths are those of :func:`planned_files` joined to ``out_dir``. Each category is drawn into a
    temporary folder beside its final place and swapped in whole, so an interrupted run leaves either
    the previous complete category folder or none (never a half-written image), and files of an earlier
    run with other counts do not linger. Same arguments, same bytes.
    """
    counts = image_counts(n_train, n_validation, n_test_good, n_test_logical, n_test_structural)
    plan = plan_images(seed, categories, image_size, counts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = json.dumps([d.as_json() for d in defect_types(image_size)], indent=4) + "\n"
    written: dict[str, list[str]] = {}
    for category, plans in plan.items():
        with atomic_path(out / category, directory=True) as tmp:
            (tmp / "README.md").write_text(_readme(category, seed, image_size, counts), encoding="utf-8")
            (tmp / "defects_config.json").write_text(config, encoding="utf-8")
            for item in plans:
                image, masks = render(item, image_size)
                _write_png(tmp / Path(item.image_path).relative_to(category), image)
                for mask_path, mask in zip(item.mask_paths, masks, strict=True):
                    _write_png(tmp / Path(mask_path).relative_to(category), mask)
        written[category] = [str(out / rel) for rel in category_files(category, plans)]
    return written
