"""The normal products of the synthetic demo data: the ``tray`` and ``board`` scenes and their lighting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anomalyflow.data.synth.drawing import (
    Canvas,
    Piece,
    blend,
    grain_noise,
    sd_box,
    sd_box_grid,
    sd_disc,
    sd_polyline,
    soft_coverage,
)

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


def _lighting(c: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
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


def _tray_scene(c: Canvas, rng: np.random.Generator) -> Scene:
    s = c.size
    oy, ox = rng.normal(0, 0.008 * s, size=2)                   # the tray sits slightly differently each time
    # Table cloth: a fine woven pattern (period ~5 px at 128) with random phase, plus grain.
    period = s / 26
    phase = rng.uniform(0, 2 * np.pi, size=2)
    weave = np.sin(2 * np.pi * c.xx / period + phase[0]) * np.sin(2 * np.pi * c.yy / period + phase[1])
    cloth = (0.34 + 0.03 * weave + 0.02 * grain_noise(rng, s, 0.7))[..., None] * np.array([0.9, 0.95, 1.1])
    image = cloth.astype(np.float32)
    # The tray: light grey plastic with a fine grain and a raised rim.
    ty0, tx0, ty1, tx1 = 0.05 * s + oy, 0.05 * s + ox, 0.95 * s + oy, 0.95 * s + ox
    cy, cx, hh, hw = (ty0 + ty1) / 2, (tx0 + tx1) / 2, (ty1 - ty0) / 2, (tx1 - tx0) / 2
    tray_sd = sd_box(c, cy, cx, hh, hw, corner=0.05 * s)
    drop = soft_coverage(sd_box(c, cy + 0.015 * s, cx + 0.015 * s, hh, hw, 0.05 * s), 3.0)
    image = image * (1 - 0.3 * drop)[..., None]
    plastic = (0.74 + 0.025 * grain_noise(rng, s, 1.0) + 0.015 * grain_noise(rng, s, (0.4, 3.0)))[..., None]
    plastic = plastic * np.array([1.0, 1.0, 0.97])
    image = blend(image, plastic, soft_coverage(tray_sd))
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
    cells = soft_coverage(sd_box_grid(c, first_y, first_x, *grid))
    # The upper and left walls shade the cell (the lamp is at the upper left): the cell minus itself shifted
    # down and right.
    inset = soft_coverage(sd_box_grid(c, first_y + 0.012 * s, first_x + 0.012 * s, *grid), 2.0)
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
    c = Canvas(size)
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
        coverage = np.maximum(coverage, soft_coverage(0.012 * size - sd_polyline(c, track)))
    coverage.setflags(write=False)
    return coverage


def _board_scene(c: Canvas, rng: np.random.Generator) -> Scene:
    s = c.size
    oy, ox = rng.normal(0, 0.008 * s, size=2)
    # Solder mask: green with grain; copper traces slightly lighter under it.
    base = np.array([0.12, 0.40, 0.22], dtype=np.float32) * rng.uniform(0.95, 1.05)
    image = (np.ones((s, s, 1), dtype=np.float32) * base
             * (1 + 0.05 * grain_noise(rng, s, 0.8) + 0.03 * grain_noise(rng, s, 3.0))[..., None])
    traces = ndimage.shift(_board_traces(s), (oy, ox), order=1, mode="nearest")
    image = blend(image, image * 1.45 + 0.03, traces)
    # IC: black body with silver pins on both long sides and a pin-1 dot.
    ic_y, ic_x = 0.30 * s + oy, 0.30 * s + ox
    pins = np.maximum(*(soft_coverage(sd_box_grid(c, ic_y - 0.15 * s, ic_x + side * 0.15 * s, (0.06 * s, 1.0), (6, 1),
                                              0.012 * s, 0.035 * s)) for side in (-1, 1)))
    image = blend(image, np.float32(0.72), pins)
    image = image * (1 - 0.4 * soft_coverage(sd_box(c, ic_y + 0.015 * s, ic_x + 0.015 * s, 0.19 * s, 0.13 * s,
                                                  0.01 * s), 2.0))[..., None]
    ic = soft_coverage(sd_box(c, ic_y, ic_x, 0.19 * s, 0.13 * s, 0.01 * s))
    ic_body = 0.09 + 0.02 * grain_noise(rng, s, 0.6)
    image = blend(image, ic_body[..., None], ic)
    pin1 = soft_coverage(sd_disc(c, ic_y - 0.14 * s, ic_x - 0.08 * s, 0.022 * s))
    image = blend(image, np.float32(0.22), pin1)
    # Connector: cream housing with a row of dark contact openings.
    co_y, co_x = 0.87 * s + oy, 0.50 * s + ox
    image = blend(image, np.array([0.86, 0.82, 0.70], dtype=np.float32),
                   soft_coverage(sd_box(c, co_y, co_x, 0.06 * s, 0.34 * s, 0.01 * s)))
    image = blend(image, np.float32(0.15),
                   soft_coverage(sd_box_grid(c, co_y, co_x - 0.28 * s, (1.0, 0.08 * s), (1, 8), 0.022 * s, 0.022 * s)))
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
    pads = sd_box_grid(c, strip_y, strip_x0, (1.0, pitch), (1, 6), 0.03 * s, 0.03 * s, 0.008 * s)
    image = blend(image, np.float32(0.78), soft_coverage(pads))
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


SCENES: dict[str, Callable[[Canvas, np.random.Generator], Scene]] = {
    "tray": _tray_scene, "board": _board_scene}
