"""The synthetic demo dataset: small MVTec-LOCO-style images, deterministic by seed, drawn with numpy.

It lets the whole workflow run offline on a laptop in minutes (random-init networks, 2 CPU cores), on
data with the structure that matters for PUAD: logical anomalies that look normal patch by patch but
break a rule about the whole image, next to structural anomalies that a local detector sees.

Layout (the real MVTec LOCO AD layout, so the ``mvtec_loco`` reader reads it unchanged)::

    <out>/<category>/README.md                      what this synthetic data is and the rules it follows
    <out>/<category>/defects_config.json
    <out>/<category>/train/good/000.png ...
    <out>/<category>/validation/good/000.png ...
    <out>/<category>/test/{good,logical_anomalies,structural_anomalies}/000.png ...
    <out>/<category>/ground_truth/{logical,structural}_anomalies/000/000.png ...   one mask per region

Categories share no file, so the workflow runs one job per category. Masks are 8-bit PNGs of the
image's size: 0 outside the region, the defect type's ``pixel_value`` inside (as in LOCO, where the
sPRO metric looks the value up in ``defects_config.json``).

Categories (each README spells out the rule a normal image obeys):

- ``tray``: a plastic tray with 2×3 compartments, one piece per compartment lying anywhere in it; the
  pieces' arrangement is fixed up to the tray being turned by 180 degrees, which swaps the two colours
  of each shape. Every spot of a compartment is sometimes bare and sometimes shows either colour.
- ``board``: a circuit board with an IC, capacitors, a connector and a strip of six pads; three LEDs
  (red, green, blue, in that order) sit on three neighbouring pads, which three varies.

Logical anomalies (one type per image): a missing piece, an extra piece (a copy of a normal one), a
wrong colour (one that is normal at that very spot in other images), two pieces swapped. Each is
plausible patch by patch and wrong for the image as a whole: a detector that pools features over the
image (PUAD's Gaussian) can see them, a purely local one mostly cannot. ``tests/test_synth.py`` checks
this with cheap proxies of both. Structural anomalies (1–2 regions): scratches, stains, holes.

Generation is two-step so that the workflow can declare the outputs without drawing anything:
:func:`planned_files` computes a cheap *plan* (which anomaly each test image gets and how many
regions, hence which mask files exist) from the seed, and :func:`generate` renders that same plan.
Every category and every image has its own random stream (``numpy.random.default_rng`` seeded with
``[seed, category_index, ...]``), so generating one category alone gives the same bytes as
generating all of them, and changing one count does not change the other images.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from anomalyflow.atomic import atomic_path
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


def _pixel_values(image_size: int) -> dict[str, int]:
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


def _plan(seed: int, categories: Iterable[str] | str | None, image_size: int,
          counts: dict[str, int]) -> dict[str, list[ImagePlan]]:
    chosen = _check_args(seed, categories, image_size, counts)
    return {category: _plan_category(category, seed, counts) for category in chosen}


def _counts(n_train: int, n_validation: int, n_test_good: int, n_test_logical: int,
            n_test_structural: int) -> dict[str, int]:
    return {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good,
            "n_test_logical": n_test_logical, "n_test_structural": n_test_structural}


def _category_files(category: str, plans: list[ImagePlan]) -> list[str]:
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
    counts = _counts(n_train, n_validation, n_test_good, n_test_logical, n_test_structural)
    return {category: _category_files(category, plans)
            for category, plans in _plan(seed, categories, image_size, counts).items()}


# ---------------------------------------------------------------------------------------------------
# Drawing primitives (signed distances in pixels, positive inside; coverage is anti-aliased over 1 px)
# ---------------------------------------------------------------------------------------------------


class _Canvas:
    """Pixel-centre coordinates of a square image (or of a window of it, see :meth:`window`)."""

    def __init__(self, size: int, yy: np.ndarray | None = None, xx: np.ndarray | None = None) -> None:
        self.size = size
        if yy is None or xx is None:
            coords = np.arange(size, dtype=np.float32) + 0.5
            yy, xx = np.meshgrid(coords, coords, indexing="ij")
        self.yy, self.xx = yy, xx

    def window(self, cy: float, cx: float, half: float) -> tuple[tuple[slice, slice], _Canvas]:
        """The part of the image within ``half`` pixels of a point: small shapes are drawn there only,
        which makes a piece cost its own area rather than the whole image's."""
        y0, y1 = max(0, int(cy - half)), min(self.size, int(np.ceil(cy + half)) + 1)
        x0, x1 = max(0, int(cx - half)), min(self.size, int(np.ceil(cx + half)) + 1)
        sl = (slice(y0, y1), slice(x0, x1))
        return sl, _Canvas(self.size, self.yy[sl], self.xx[sl])


def _coverage(sd: np.ndarray, softness: float = 1.0) -> np.ndarray:
    return np.clip(sd / softness + 0.5, 0.0, 1.0)


def _sd_disc(c: _Canvas, cy: float, cx: float, r: float) -> np.ndarray:
    return r - np.hypot(c.yy - cy, c.xx - cx)


def _sd_box(c: _Canvas, cy: float, cx: float, hh: float, hw: float, corner: float = 0.0) -> np.ndarray:
    corner = min(corner, hh, hw)
    qy = np.abs(c.yy - cy) - (hh - corner)
    qx = np.abs(c.xx - cx) - (hw - corner)
    outside = np.hypot(np.maximum(qy, 0), np.maximum(qx, 0)) + np.minimum(np.maximum(qy, qx), 0)
    return corner - outside


def _sd_diamond(c: _Canvas, cy: float, cx: float, r: float) -> np.ndarray:
    return (r - np.abs(c.yy - cy) - np.abs(c.xx - cx)) / np.sqrt(2.0)


def _sd_polyline(c: _Canvas, points: np.ndarray) -> np.ndarray:
    """Distance of every pixel to a polyline (points: (n, 2) as y, x), one segment at a time."""
    dist = np.full(c.yy.shape, np.inf, dtype=np.float32)
    for (ay, ax), (by, bx) in itertools.pairwise(points):
        ey, ex = by - ay, bx - ax
        t = np.clip(((c.yy - ay) * ey + (c.xx - ax) * ex) / max(ey * ey + ex * ex, 1e-9), 0.0, 1.0)
        np.minimum(dist, np.hypot(c.yy - (ay + t * ey), c.xx - (ax + t * ex)), out=dist)
    return dist


def _sd_box_grid(c: _Canvas, cy: float, cx: float, step: tuple[float, float], n: tuple[int, int], hh: float,
                 hw: float, corner: float = 0.0) -> np.ndarray:
    """A grid of n[0] × n[1] equal boxes centred at (cy + i·step[0], cx + j·step[1]) in one pass: each pixel
    measures the distance to the nearest box of the grid (the boxes must not overlap)."""
    ky = np.clip(np.rint((c.yy - cy) / step[0]), 0, n[0] - 1) if n[0] > 1 else 0.0
    kx = np.clip(np.rint((c.xx - cx) / step[1]), 0, n[1] - 1) if n[1] > 1 else 0.0
    shifted = _Canvas(c.size, c.yy - ky * step[0], c.xx - kx * step[1])
    return _sd_box(shifted, cy, cx, hh, hw, corner)


def _blend(image: np.ndarray, colour: np.ndarray | float, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return image * (1.0 - a) + np.asarray(colour, dtype=np.float32) * a


def _grain(rng: np.random.Generator, size: int, sigma: float | tuple[float, float]) -> np.ndarray:
    """Zero-mean, unit-variance blurred noise: fine texture with a controlled grain size."""
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-6)


# ---------------------------------------------------------------------------------------------------
# Pieces: the objects a logical rule is about
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """An object that a logical rule is about (a tray piece, an LED) or a fixed part drawn the same way."""

    shape: str                  # disc | square | diamond | led | capacitor
    cy: float                   # centre, pixels
    cx: float
    r: float                    # half-size, pixels
    colour: tuple[float, float, float]
    slot: int                   # the compartment / pad / place it belongs to


def _piece_sd(c: _Canvas, p: Piece, dy: float = 0.0, dx: float = 0.0) -> np.ndarray:
    if p.shape == "square":
        return _sd_box(c, p.cy + dy, p.cx + dx, p.r * 0.88, p.r * 0.88, corner=p.r * 0.25)
    if p.shape == "diamond":
        return _sd_diamond(c, p.cy + dy, p.cx + dx, p.r * 1.15)
    return _sd_disc(c, p.cy + dy, p.cx + dx, p.r)


def _piece_mask(c: _Canvas, p: Piece) -> np.ndarray:
    return _piece_sd(c, p) > -0.5


def _draw_piece(image: np.ndarray, c: _Canvas, p: Piece, light: tuple[float, float]) -> np.ndarray:
    """Draw a shaded piece with a soft drop shadow into ``image`` (in place); ``light`` is the unit (y, x)
    direction the light travels, so the lit side faces against it and the shadow falls along it."""
    shift = max(1.0, p.r * 0.35)
    sy, sx = shift * light[0], shift * light[1]          # the shadow falls the way the light travels
    softness = max(1.5, p.r * 0.3)
    sl, w = c.window(p.cy + sy / 2, p.cx + sx / 2, p.r * 1.25 + shift + softness + 2)
    patch = image[sl]
    shadow = _coverage(_piece_sd(w, p, sy, sx), softness=softness)
    patch = patch * (1.0 - 0.35 * shadow[..., None])
    sd = _piece_sd(w, p)
    alpha = _coverage(sd)
    # Dome shading: brighter towards the light, darker rim, a small specular spot (why: pieces must look
    # like solid objects, so that a copy placed elsewhere is "locally plausible" in every patch).
    dy, dx = (w.yy - p.cy) / p.r, (w.xx - p.cx) / p.r
    facing = np.clip(-(dy * light[0] + dx * light[1]), -1.0, 1.0)
    rim = np.clip(sd / max(1.0, p.r * 0.25), 0.0, 1.0)
    shade = (0.82 + 0.18 * facing) * (0.7 + 0.3 * rim)
    colour = np.asarray(p.colour, dtype=np.float32)
    body = colour[None, None, :] * shade[..., None]
    if p.shape == "led":
        # An LED is a translucent dome that glows from the centre.
        glow = np.clip(1.0 - np.hypot(dy, dx), 0.0, 1.0)
        body = body + 0.25 * glow[..., None] * (1.0 - colour)
    if p.shape == "capacitor":
        # Electrolytic top: a lighter polarity band on one side and a pressed cross.
        band = ((dx > 0.35) & (dx < 0.75)).astype(np.float32)
        cross = ((np.abs(dx) < 0.08) | (np.abs(dy) < 0.08)) & (np.hypot(dx, dy) < 0.6)
        body = body * (1.0 - 0.35 * cross[..., None]) + 0.35 * band[..., None] * (1.0 - body)
    spot = np.exp(-((dy + 0.4 * light[0]) ** 2 + (dx + 0.4 * light[1]) ** 2) / 0.04)
    body = body + 0.35 * spot[..., None] * (1.0 - body)
    image[sl] = _blend(patch, body, alpha)
    return image


# ---------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """A normal product before its pieces are drawn: background, where pieces belong, the pieces."""

    background: np.ndarray                  # (H, W, 3) float32 in [0, 1], unlit, pieces not drawn yet
    pieces: list[Piece]
    slot_boxes: list[tuple[float, float, float, float]]   # per slot: y0, x0, y1, x1 (pixels)
    free_slots: list[int]                   # slots with room for an extra piece
    product_box: tuple[float, float, float, float]         # where structural defects may fall
    light: tuple[float, float]
    lighting: np.ndarray                    # (H, W, 3) multiplicative illumination, applied last
    palette: list[tuple[float, float, float]]
    targets: tuple[str, ...] = ("disc", "square", "diamond")   # shapes that logical defects may touch
    partner: tuple[int, ...] | None = None  # per slot, the slot whose piece it may be confused with


# (shape, colour) per compartment, row-major, for a tray loaded the standard way. The tray is symmetric and
# is also loaded turned by 180 degrees (compartment k then holds the kind of compartment 5 - k), so each
# compartment holds one of two kinds, of the same shape and two colours: red/blue disc, yellow/green square,
# purple/orange diamond. Locally either colour is normal anywhere; only the whole tray says which is right.
_TRAY_PIECES = (
    ("disc", (0.82, 0.16, 0.13)),
    ("square", (0.95, 0.78, 0.16)),
    ("diamond", (0.58, 0.26, 0.66)),
    ("diamond", (0.96, 0.52, 0.12)),
    ("square", (0.18, 0.62, 0.26)),
    ("disc", (0.16, 0.36, 0.80)),
)
_TRAY_PARTNER = (5, 4, 3, 2, 1, 0)     # the compartment a slot's piece goes to when the tray is turned


def _lighting(c: _Canvas, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A smooth multiplicative illumination field and the direction light travels in (unit y, x).

    An inspection station's lamp is fixed, so the light comes from the upper left give or take 20 degrees;
    its strength, the overall brightness and the white balance drift a little between shots.
    """
    angle = np.deg2rad(45 + rng.uniform(-20, 20))
    ly, lx = float(np.sin(angle)), float(np.cos(angle))
    strength = rng.uniform(0.03, 0.09)
    ramp = ((c.yy / c.size - 0.5) * ly + (c.xx / c.size - 0.5) * lx) * -2 * strength
    vignette = 0.06 * (np.hypot(c.yy / c.size - 0.5, c.xx / c.size - 0.5) / 0.7) ** 2
    gain = rng.uniform(0.95, 1.05) * rng.uniform(0.98, 1.02, size=3)           # brightness and white balance
    field = (1.0 + ramp - vignette)[..., None] * gain[None, None, :].astype(np.float32)
    return field.astype(np.float32), (ly, lx)


def _tray_scene(c: _Canvas, rng: np.random.Generator) -> Scene:
    s = c.size
    oy, ox = rng.normal(0, 0.008 * s, size=2)                   # the tray sits slightly differently each time
    # Table cloth: a fine woven pattern (period ~5 px at 128) with random phase, plus grain.
    period = s / 26
    phase = rng.uniform(0, 2 * np.pi, size=2)
    weave = np.sin(2 * np.pi * c.xx / period + phase[0]) * np.sin(2 * np.pi * c.yy / period + phase[1])
    cloth = (0.34 + 0.03 * weave + 0.02 * _grain(rng, s, 0.7))[..., None] * np.array([0.9, 0.95, 1.1])
    image = cloth.astype(np.float32)
    # The tray: light grey plastic with a fine grain and a raised rim.
    ty0, tx0, ty1, tx1 = 0.05 * s + oy, 0.05 * s + ox, 0.95 * s + oy, 0.95 * s + ox
    cy, cx, hh, hw = (ty0 + ty1) / 2, (tx0 + tx1) / 2, (ty1 - ty0) / 2, (tx1 - tx0) / 2
    tray_sd = _sd_box(c, cy, cx, hh, hw, corner=0.05 * s)
    drop = _coverage(_sd_box(c, cy + 0.015 * s, cx + 0.015 * s, hh, hw, 0.05 * s), 3.0)
    image = image * (1 - 0.3 * drop)[..., None]
    plastic = (0.74 + 0.025 * _grain(rng, s, 1.0) + 0.015 * _grain(rng, s, (0.4, 3.0)))[..., None]
    plastic = plastic * np.array([1.0, 1.0, 0.97])
    image = _blend(image, plastic, _coverage(tray_sd))
    # Compartments: recessed (darker) rounded cells.
    rows, cols, wall, margin = 2, 3, 0.03 * s, 0.035 * s
    inner_y0, inner_x0 = ty0 + margin, tx0 + margin
    cell_h = (ty1 - ty0 - 2 * margin - (rows - 1) * wall) / rows
    cell_w = (tx1 - tx0 - 2 * margin - (cols - 1) * wall) / cols
    boxes = [(inner_y0 + r * (cell_h + wall), inner_x0 + k * (cell_w + wall),
              inner_y0 + r * (cell_h + wall) + cell_h, inner_x0 + k * (cell_w + wall) + cell_w)
             for r in range(rows) for k in range(cols)]
    grid = ((cell_h + wall, cell_w + wall), (rows, cols), cell_h / 2, cell_w / 2, 0.03 * s)
    first_y, first_x = inner_y0 + cell_h / 2, inner_x0 + cell_w / 2
    cells = _coverage(_sd_box_grid(c, first_y, first_x, *grid))
    # The upper and left walls shade the cell (the lamp is at the upper left): the cell minus itself shifted
    # down and right.
    inset = _coverage(_sd_box_grid(c, first_y + 0.012 * s, first_x + 0.012 * s, *grid), 2.0)
    walls_shadow = cells * (1 - inset)
    image = image * (1 - 0.1 * cells - 0.18 * walls_shadow)[..., None]
    field, light = _lighting(c, rng)
    # One piece per compartment, anywhere inside it (a margin keeps it off the walls). The large jitter is
    # deliberate: every spot of a compartment is sometimes bare, so an empty compartment or a second piece
    # is locally plausible and only the count per compartment tells it apart.
    radius = 0.076 * s
    tint = rng.uniform(0.94, 1.06)
    turned = bool(rng.integers(2))
    kinds = [_TRAY_PIECES[_TRAY_PARTNER[k]] if turned else _TRAY_PIECES[k] for k in range(len(boxes))]
    pieces = []
    for slot, ((y0, x0, y1, x1), (shape, colour)) in enumerate(zip(boxes, kinds, strict=True)):
        pad = radius * 1.35
        piece_colour = tuple(float(np.clip(v * tint * rng.uniform(0.96, 1.04), 0, 1)) for v in colour)
        py, px = float(rng.uniform(y0 + pad, y1 - pad)), float(rng.uniform(x0 + pad, x1 - pad))
        pieces.append(Piece(shape, py, px, radius * rng.uniform(0.95, 1.05), piece_colour, slot))
    return Scene(image, pieces, boxes, list(range(len(boxes))), (ty0, tx0, ty1, tx1), light, field,
                 [colour for _, colour in _TRAY_PIECES], partner=_TRAY_PARTNER)


_LED_COLOURS = ((0.9, 0.12, 0.1), (0.15, 0.8, 0.22), (0.15, 0.4, 0.95))
_CAP_COLOURS = ((0.18, 0.28, 0.62), (0.45, 0.30, 0.18))


@functools.lru_cache(maxsize=4)
def _board_traces(size: int) -> np.ndarray:
    """Coverage of the copper traces for a board at offset zero.

    The layout is the same on every board (a PCB design is fixed), so it comes from a fixed seed and is
    drawn once per image size; each board shifts it by its own small offset.
    """
    c = _Canvas(size)
    rng = np.random.default_rng(20240611)
    coverage = np.zeros((size, size), dtype=np.float32)
    for _ in range(9):
        y, x = rng.uniform(0.05, 0.95, size=2)
        points = [(y, x)]
        for _ in range(3):  # axis-parallel segments, like routed tracks
            if rng.random() < 0.5:
                x = float(np.clip(x + rng.uniform(-0.4, 0.4), 0.03, 0.97))
            else:
                y = float(np.clip(y + rng.uniform(-0.4, 0.4), 0.03, 0.97))
            points.append((y, x))
        track = np.asarray(points, dtype=np.float32) * size
        coverage = np.maximum(coverage, _coverage(0.012 * size - _sd_polyline(c, track)))
    coverage.setflags(write=False)
    return coverage


def _board_scene(c: _Canvas, rng: np.random.Generator) -> Scene:
    s = c.size
    oy, ox = rng.normal(0, 0.008 * s, size=2)
    # Solder mask: green with grain; copper traces slightly lighter under it.
    base = np.array([0.12, 0.40, 0.22], dtype=np.float32) * rng.uniform(0.95, 1.05)
    image = (np.ones((s, s, 1), dtype=np.float32) * base
             * (1 + 0.05 * _grain(rng, s, 0.8) + 0.03 * _grain(rng, s, 3.0))[..., None])
    traces = ndimage.shift(_board_traces(s), (oy, ox), order=1, mode="nearest")
    image = _blend(image, image * 1.45 + 0.03, traces)
    # IC: black body with silver pins on both long sides and a pin-1 dot.
    ic_y, ic_x = 0.30 * s + oy, 0.30 * s + ox
    pins = np.maximum(*(_coverage(_sd_box_grid(c, ic_y - 0.15 * s, ic_x + side * 0.15 * s, (0.06 * s, 1.0), (6, 1),
                                              0.012 * s, 0.035 * s)) for side in (-1, 1)))
    image = _blend(image, np.float32(0.72), pins)
    image = image * (1 - 0.4 * _coverage(_sd_box(c, ic_y + 0.015 * s, ic_x + 0.015 * s, 0.19 * s, 0.13 * s,
                                                  0.01 * s), 2.0))[..., None]
    ic = _coverage(_sd_box(c, ic_y, ic_x, 0.19 * s, 0.13 * s, 0.01 * s))
    ic_body = 0.09 + 0.02 * _grain(rng, s, 0.6)
    image = _blend(image, ic_body[..., None], ic)
    pin1 = _coverage(_sd_disc(c, ic_y - 0.14 * s, ic_x - 0.08 * s, 0.022 * s))
    image = _blend(image, np.float32(0.22), pin1)
    # Connector: cream housing with a row of dark contact openings.
    co_y, co_x = 0.87 * s + oy, 0.50 * s + ox
    image = _blend(image, np.array([0.86, 0.82, 0.70], dtype=np.float32),
                   _coverage(_sd_box(c, co_y, co_x, 0.06 * s, 0.34 * s, 0.01 * s)))
    image = _blend(image, np.float32(0.15),
                   _coverage(_sd_box_grid(c, co_y, co_x - 0.28 * s, (1.0, 0.08 * s), (1, 8), 0.022 * s, 0.022 * s)))
    # LED strip: six pads and three LEDs in a fixed order (red, green, blue) on three neighbouring pads; which
    # three varies between boards (the strip is fitted at one of four offsets). So every pad is sometimes bare
    # and sometimes carries each of up to three LEDs, and the pads are far enough apart that a small patch
    # sees one pad only: no patch tells a missing, extra or misplaced LED from a normal board, only the count
    # and order along the strip do.
    pitch = 0.15 * s
    strip_y = 0.64 * s + oy
    strip_x0 = 0.5 * s - 2.5 * pitch + ox
    first = int(rng.integers(4))
    pad_centres = [(strip_y, strip_x0 + k * pitch) for k in range(6)]
    pads = _sd_box_grid(c, strip_y, strip_x0, (1.0, pitch), (1, 6), 0.03 * s, 0.03 * s, 0.008 * s)
    image = _blend(image, np.float32(0.78), _coverage(pads))
    boxes = [(py - pitch / 2, px - pitch / 2, py + pitch / 2, px + pitch / 2) for py, px in pad_centres]
    field, light = _lighting(c, rng)
    tint = rng.uniform(0.94, 1.06)

    def jitter(colour: tuple[float, float, float]) -> tuple[float, float, float]:
        return tuple(float(np.clip(v * tint * rng.uniform(0.96, 1.04), 0, 1)) for v in colour)

    pieces = [Piece("led", py + rng.normal(0, 0.003 * s), px + rng.normal(0, 0.003 * s), 0.033 * s,
                    jitter(_LED_COLOURS[k - first]), k)
              for k, (py, px) in enumerate(pad_centres) if first <= k < first + len(_LED_COLOURS)]
    # Two capacitors right of the IC: fixed parts that logical defects leave alone.
    for k, colour in enumerate(_CAP_COLOURS):
        cy, cx = 0.22 * s + k * 0.2 * s + oy, 0.72 * s + ox
        py, px = cy + rng.normal(0, 0.005 * s), cx + rng.normal(0, 0.005 * s)
        pieces.append(Piece("capacitor", py, px, 0.07 * s, jitter(colour), len(boxes)))
        boxes.append((cy - 0.09 * s, cx - 0.09 * s, cy + 0.09 * s, cx + 0.09 * s))
    free = [k for k in (first - 1, first + len(_LED_COLOURS)) if 0 <= k < 6]     # bare pads next to the LEDs
    return Scene(image, pieces, boxes, free, (0.03 * s, 0.03 * s, 0.97 * s, 0.97 * s), light, field,
                 list(_LED_COLOURS), targets=("led",))


_SCENES: dict[str, Callable[[_Canvas, np.random.Generator], Scene]] = {
    "tray": _tray_scene, "board": _board_scene}


# ---------------------------------------------------------------------------------------------------
# Logical anomalies: edit the pieces, return one mask per region
# ---------------------------------------------------------------------------------------------------


def _box_mask(c: _Canvas, box: tuple[float, float, float, float]) -> np.ndarray:
    y0, x0, y1, x1 = box
    return _sd_box(c, (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2) > -0.5


def _apply_logical(c: _Canvas, scene: Scene, defect: str, n_regions: int, category: str,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Break one rule of the scene; return one mask per region."""
    pieces = scene.pieces
    targets = [i for i, p in enumerate(pieces) if p.shape in scene.targets]
    if defect == "missing_object":
        gone = [targets[int(k)] for k in rng.choice(len(targets), size=n_regions, replace=False)]
        # Tray: the piece may lie anywhere in its compartment, so the whole compartment is "where it should
        # be" (as LOCO annotates a missing pushpin). Board: the LED's own footprint on its pad.
        masks = [_box_mask(c, scene.slot_boxes[pieces[i].slot]) if category == "tray"
                 else _piece_mask(c, pieces[i]) for i in gone]
        scene.pieces = [p for i, p in enumerate(pieces) if i not in gone]
        return masks
    if defect == "extra_object":
        if category == "tray":
            # A second piece of the compartment's own kind, in the half of the compartment the first leaves.
            p = pieces[targets[int(rng.integers(len(targets)))]]
            y0, x0, y1, x1 = scene.slot_boxes[p.slot]
            mid = (y0 + y1) / 2
            pad = p.r * 1.3
            low, high = (y0 + pad, mid - p.r * 0.2) if p.cy > mid else (mid + p.r * 0.2, y1 - pad)
            ny = rng.uniform(low, high)
            if abs(ny - p.cy) < 2.2 * p.r:   # too close: push it to the far end of the compartment
                ny = y0 + pad if p.cy > mid else y1 - pad
            extra = replace(p, cy=float(ny), cx=float(rng.uniform(x0 + pad, x1 - pad)))
        else:
            # A fifth LED on a bare pad, a copy of the LED next to it.
            slot = scene.free_slots[int(rng.integers(len(scene.free_slots)))]
            y0, x0, y1, x1 = scene.slot_boxes[slot]
            neighbours = [p for p in pieces if p.shape == "led" and abs(p.slot - slot) == 1]
            source = neighbours[int(rng.integers(len(neighbours)))]
            sy0, sx0, sy1, sx1 = scene.slot_boxes[source.slot]
            # Same offset from its pad as the source LED has from its own, like a normally placed LED.
            extra = replace(source, cy=source.cy + (y0 + y1 - sy0 - sy1) / 2,
                            cx=source.cx + (x0 + x1 - sx0 - sx1) / 2, slot=slot)
        scene.pieces = [*pieces, extra]
        return [_piece_mask(c, extra)]
    if defect == "wrong_colour":
        # The new colour is one that occurs at this very place in normal images (tray: the colour of the
        # piece's partner, which this compartment holds when the tray is turned; board: another LED's,
        # which this pad carries when the strip sits elsewhere), so no patch is unusual: the image now has
        # two pieces of one colour and none of another.
        i = targets[int(rng.integers(len(targets)))]
        p = pieces[i]
        if scene.partner is not None:
            colour = next(q.colour for q in pieces if q.slot == scene.partner[p.slot])
        else:
            others = [col for col in scene.palette if np.abs(np.subtract(col, p.colour)).sum() > 0.3]
            colour = others[int(rng.integers(len(others)))]
        pieces[i] = replace(p, colour=colour)
        return [_piece_mask(c, pieces[i])]
    if defect == "swapped_objects":
        # Two pieces trade places: each keeps its shape and colour and takes the other's position. Tray: a
        # piece and its partner, so that one pair is loaded as if the tray were turned and the rest not.
        i = targets[int(rng.integers(len(targets)))]
        if scene.partner is not None:
            j = next(k for k in targets if pieces[k].slot == scene.partner[pieces[i].slot])
        else:
            j = [k for k in targets if k != i][int(rng.integers(len(targets) - 1))]
        a, b = pieces[i], pieces[j]
        new_a = replace(b, cy=a.cy, cx=a.cx, slot=a.slot)
        new_b = replace(a, cy=b.cy, cx=b.cx, slot=b.slot)
        pieces[i], pieces[j] = new_a, new_b
        return [_piece_mask(c, a) | _piece_mask(c, new_a), _piece_mask(c, b) | _piece_mask(c, new_b)]
    raise ValueError(f"unknown logical defect {defect!r}")


# ---------------------------------------------------------------------------------------------------
# Structural anomalies: drawn on the finished product
# ---------------------------------------------------------------------------------------------------


def _place(rng: np.random.Generator, box: tuple[float, float, float, float], margin: float,
           taken: list[tuple[float, float]], min_gap: float) -> tuple[float, float]:
    """A point inside the box, away from the regions already placed (a few tries, then accept)."""
    y0, x0, y1, x1 = box
    for _ in range(20):
        y, x = rng.uniform(y0 + margin, y1 - margin), rng.uniform(x0 + margin, x1 - margin)
        if all(np.hypot(y - ty, x - tx) >= min_gap for ty, tx in taken):
            break
    return float(y), float(x)


def _luminance_under(image: np.ndarray, weight: np.ndarray) -> float:
    """Mean brightness of the image where a defect falls (weights: the defect's coverage)."""
    total = float(weight.sum())
    return float((image.mean(axis=-1) * weight).sum() / total) if total > 0 else 0.5


# The defects adapt their colour to the surface under them (dark marks on light plastic, light marks on the
# dark board or the black IC): a defect that happens to be invisible would teach nothing and only add noise
# to the demo's structural-anomaly numbers.


def _scratch(image: np.ndarray, c: _Canvas, centre: tuple[float, float],
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = c.size
    length = rng.uniform(0.22, 0.38) * s
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([-direction[1], direction[0]])
    p0 = np.asarray(centre) - direction * length / 2
    p2 = np.asarray(centre) + direction * length / 2
    p1 = np.asarray(centre) + normal * rng.uniform(-0.25, 0.25) * length          # bend: a curved scratch
    t = np.linspace(0, 1, 24)[:, None]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    curve = np.clip(curve, 1.0, s - 1.0)
    width = max(1.2, rng.uniform(1.3, 2.2) * s / 128)
    dist = _sd_polyline(c, curve.astype(np.float32))
    alpha = _coverage(width / 2 - dist) * rng.uniform(0.8, 0.95)
    # Through paint or solder mask a scratch shows bright material (metal, copper); on light plastic it
    # is a dark groove that collected dirt. A dark halo on one side gives it depth.
    if _luminance_under(image, alpha) < 0.45:
        colour = np.array([0.92, 0.78, 0.55], dtype=np.float32) * rng.uniform(0.9, 1.05)
    else:
        colour = np.array([0.14, 0.12, 0.11], dtype=np.float32) * rng.uniform(0.8, 1.2)
    image = _blend(image, colour, alpha)
    edge = _coverage(width / 2 + 1.0 - dist) - _coverage(width / 2 - dist)
    image = image * (1 - 0.3 * edge[..., None])
    return image, dist <= width / 2 + 1.0


def _stain(image: np.ndarray, c: _Canvas, centre: tuple[float, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = c.size
    r0 = rng.uniform(0.05, 0.085) * s
    theta = np.arctan2(c.yy - centre[0], c.xx - centre[1])
    # An irregular outline: a circle whose radius wobbles with a few random low harmonics.
    wobble = sum(rng.uniform(0.06, 0.16) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    sd = r0 * (1 + wobble) - np.hypot(c.yy - centre[0], c.xx - centre[1])
    shape = _coverage(sd, 1.5)
    density = np.clip(0.75 + 0.25 * _grain(rng, s, 1.5), 0.3, 1.0) * rng.uniform(0.65, 0.85)
    # A darker, tide-marked edge, as a dried liquid leaves.
    ring = np.clip(1 - np.abs(sd) / 2.0, 0, 1) * 0.25
    alpha = np.clip(shape * density + ring * shape, 0, 1)
    if _luminance_under(image, shape) < 0.4:
        # On a dark surface: a pale residue (dried flux, limescale).
        residue = np.array(rng.choice([[0.78, 0.74, 0.58], [0.70, 0.72, 0.70]]), dtype=np.float32)
        image = _blend(image, residue, alpha)
    else:
        # On a light surface: oil, coffee or rust, which darkens and tints what is under it.
        tint = np.array(rng.choice([[0.55, 0.38, 0.16], [0.38, 0.34, 0.14], [0.30, 0.22, 0.18]]),
                        dtype=np.float32)
        image = _blend(image, image * tint, alpha)
    return image, sd > 0


def _hole(image: np.ndarray, c: _Canvas, centre: tuple[float, float], light: tuple[float, float],
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = c.size
    r = rng.uniform(0.03, 0.05) * s
    rim = max(1.2, 0.016 * s)
    dist = np.hypot(c.yy - centre[0], c.xx - centre[1])
    dy, dx = (c.yy - centre[0]) / np.maximum(dist, 1e-3), (c.xx - centre[1]) / np.maximum(dist, 1e-3)
    facing = -(dy * light[0] + dx * light[1])
    # A punched or torn hole: a raised rim of the broken core material (pale, lit on the side facing the
    # light), and a dark pit whose far wall catches a little light.
    ring = _coverage(r + rim - dist) * (1 - _coverage(r - dist))
    core = np.array([0.80, 0.76, 0.64], dtype=np.float32) * (0.75 + 0.25 * facing[..., None])
    image = _blend(image, core, ring * 0.9)
    inside = _coverage(r - dist)
    depth = (0.04 + 0.08 * np.clip(facing, 0, 1) * (dist / r))[..., None]
    image = _blend(image, depth, inside)
    return image, dist <= r + rim


def _apply_structural(image: np.ndarray, c: _Canvas, scene: Scene, defects: tuple[str, ...],
                      rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    masks = []
    taken: list[tuple[float, float]] = []
    for defect in defects:
        centre = _place(rng, scene.product_box, 0.12 * c.size, taken, 0.3 * c.size)
        taken.append(centre)
        if defect == "scratch":
            image, mask = _scratch(image, c, centre, rng)
        elif defect == "stain":
            image, mask = _stain(image, c, centre, rng)
        elif defect == "hole":
            image, mask = _hole(image, c, centre, scene.light, rng)
        else:
            raise ValueError(f"unknown structural defect {defect!r}")
        masks.append(mask)
    return image, masks


# ---------------------------------------------------------------------------------------------------
# Rendering one planned image
# ---------------------------------------------------------------------------------------------------


def render(plan: ImagePlan, image_size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw one planned image: (H, W, 3) uint8 RGB and one uint8 mask per region (0 / pixel_value)."""
    c = _Canvas(image_size)
    rng = np.random.default_rng(list(plan.entropy))
    scene = _SCENES[plan.category](c, rng)
    masks: list[np.ndarray] = []
    if plan.folder == "logical_anomalies":
        masks = _apply_logical(c, scene, plan.defects[0], len(plan.defects), plan.category, rng)
    image = scene.background
    for piece in scene.pieces:
        image = _draw_piece(image, c, piece, scene.light)
    if plan.folder == "structural_anomalies":
        image, masks = _apply_structural(image, c, scene, plan.defects, rng)
    image = image * scene.lighting
    image = image + rng.normal(0, 0.012, size=image.shape).astype(np.float32)    # sensor noise
    values = _pixel_values(image_size)
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
    counts = _counts(n_train, n_validation, n_test_good, n_test_logical, n_test_structural)
    plan = _plan(seed, categories, image_size, counts)
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
        written[category] = [str(out / rel) for rel in _category_files(category, plans)]
    return written


__all__ = ["CATEGORIES", "LOGICAL_DEFECTS", "STRUCTURAL_DEFECTS", "DefectType", "ImagePlan", "defect_types",
           "generate", "planned_files", "render"]
