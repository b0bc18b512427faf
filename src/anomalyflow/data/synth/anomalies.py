"""The anomalies of the synthetic demo data: logical ones edit a scene's pieces, structural ones are drawn
on the finished product; each returns one mask per region.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anomalyflow.data.synth.drawing import Canvas, blend, grain_noise, piece_mask, sd_box, sd_polyline, soft_coverage
from anomalyflow.data.synth.scenes import Scene

# ---------------------------------------------------------------------------------------------------
# Logical anomalies: edit the pieces, return one mask per region
# ---------------------------------------------------------------------------------------------------


def _box_mask(c: Canvas, box: tuple[float, float, float, float]) -> np.ndarray:
    y0, x0, y1, x1 = box
    return sd_box(c, (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2) > -0.5


def apply_logical(c: Canvas, scene: Scene, defect: str, n_regions: int, category: str,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Break one rule of the scene; return one mask per region."""
    pieces = scene.pieces
    targets = [i for i, p in enumerate(pieces) if p.shape in scene.targets]
    if defect == "missing_object":
        gone = [targets[int(k)] for k in rng.choice(len(targets), size=n_regions, replace=False)]
        # Tray: the piece may lie anywhere in its compartment, so the whole compartment is "where it should
        # be" (as LOCO annotates a missing pushpin). Board: the LED's own footprint on its pad.
        masks = [_box_mask(c, scene.slot_boxes[pieces[i].slot]) if category == "tray"
                 else piece_mask(c, pieces[i]) for i in gone]
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
        return [piece_mask(c, extra)]
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
        return [piece_mask(c, pieces[i])]
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
        return [piece_mask(c, a) | piece_mask(c, new_a), piece_mask(c, b) | piece_mask(c, new_b)]
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


def _scratch(image: np.ndarray, c: Canvas, centre: tuple[float, float],
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
    dist = sd_polyline(c, curve.astype(np.float32))
    alpha = soft_coverage(width / 2 - dist) * rng.uniform(0.8, 0.95)
    # Through paint or solder mask a scratch shows bright material (metal, copper); on light plastic it
    # is a dark groove that collected dirt. A dark halo on one side gives it depth.
    if _luminance_under(image, alpha) < 0.45:
        colour = np.array([0.92, 0.78, 0.55], dtype=np.float32) * rng.uniform(0.9, 1.05)
    else:
        colour = np.array([0.14, 0.12, 0.11], dtype=np.float32) * rng.uniform(0.8, 1.2)
    image = blend(image, colour, alpha)
    edge = soft_coverage(width / 2 + 1.0 - dist) - soft_coverage(width / 2 - dist)
    image = image * (1 - 0.3 * edge[..., None])
    return image, dist <= width / 2 + 1.0


def _stain(image: np.ndarray, c: Canvas, centre: tuple[float, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = c.size
    r0 = rng.uniform(0.05, 0.085) * s
    theta = np.arctan2(c.yy - centre[0], c.xx - centre[1])
    # An irregular outline: a circle whose radius wobbles with a few random low harmonics.
    wobble = sum(rng.uniform(0.06, 0.16) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    sd = r0 * (1 + wobble) - np.hypot(c.yy - centre[0], c.xx - centre[1])
    shape = soft_coverage(sd, 1.5)
    density = np.clip(0.75 + 0.25 * grain_noise(rng, s, 1.5), 0.3, 1.0) * rng.uniform(0.65, 0.85)
    # A darker, tide-marked edge, as a dried liquid leaves.
    ring = np.clip(1 - np.abs(sd) / 2.0, 0, 1) * 0.25
    alpha = np.clip(shape * density + ring * shape, 0, 1)
    if _luminance_under(image, shape) < 0.4:
        # On a dark surface: a pale residue (dried flux, limescale).
        residue = np.array(rng.choice([[0.78, 0.74, 0.58], [0.70, 0.72, 0.70]]), dtype=np.float32)
        image = blend(image, residue, alpha)
    else:
        # On a light surface: oil, coffee or rust, which darkens and tints what is under it.
        tint = np.array(rng.choice([[0.55, 0.38, 0.16], [0.38, 0.34, 0.14], [0.30, 0.22, 0.18]]),
                        dtype=np.float32)
        image = blend(image, image * tint, alpha)
    return image, sd > 0


def _hole(image: np.ndarray, c: Canvas, centre: tuple[float, float], light: tuple[float, float],
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = c.size
    r = rng.uniform(0.03, 0.05) * s
    rim = max(1.2, 0.016 * s)
    dist = np.hypot(c.yy - centre[0], c.xx - centre[1])
    dy, dx = (c.yy - centre[0]) / np.maximum(dist, 1e-3), (c.xx - centre[1]) / np.maximum(dist, 1e-3)
    facing = -(dy * light[0] + dx * light[1])
    # A punched or torn hole: a raised rim of the broken core material (pale, lit on the side facing the
    # light), and a dark pit whose far wall catches a little light.
    ring = soft_coverage(r + rim - dist) * (1 - soft_coverage(r - dist))
    core = np.array([0.80, 0.76, 0.64], dtype=np.float32) * (0.75 + 0.25 * facing[..., None])
    image = blend(image, core, ring * 0.9)
    inside = soft_coverage(r - dist)
    depth = (0.04 + 0.08 * np.clip(facing, 0, 1) * (dist / r))[..., None]
    image = blend(image, depth, inside)
    return image, dist <= r + rim


def apply_structural(image: np.ndarray, c: Canvas, scene: Scene, defects: tuple[str, ...],
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
