"""Drawing primitives of the synthetic demo data: signed distances, anti-aliased coverage, noise, pieces."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# ---------------------------------------------------------------------------------------------------
# Drawing primitives (signed distances in pixels, positive inside; coverage is anti-aliased over 1 px)
# ---------------------------------------------------------------------------------------------------


class Canvas:
    """Pixel-centre coordinates of a square image (or of a window of it, see :meth:`window`)."""

    def __init__(self, size: int, yy: np.ndarray | None = None, xx: np.ndarray | None = None) -> None:
        self.size = size
        if yy is None or xx is None:
            coords = np.arange(size, dtype=np.float32) + 0.5
            yy, xx = np.meshgrid(coords, coords, indexing="ij")
        self.yy, self.xx = yy, xx

    def window(self, cy: float, cx: float, half: float) -> tuple[tuple[slice, slice], Canvas]:
        """The part of the image within ``half`` pixels of a point: small shapes are drawn there only,
        which makes a piece cost its own area rather than the whole image's."""
        y0, y1 = max(0, int(cy - half)), min(self.size, int(np.ceil(cy + half)) + 1)
        x0, x1 = max(0, int(cx - half)), min(self.size, int(np.ceil(cx + half)) + 1)
        sl = (slice(y0, y1), slice(x0, x1))
        return sl, Canvas(self.size, self.yy[sl], self.xx[sl])


def soft_coverage(sd: np.ndarray, softness: float = 1.0) -> np.ndarray:
    return np.clip(sd / softness + 0.5, 0.0, 1.0)


def sd_disc(c: Canvas, cy: float, cx: float, r: float) -> np.ndarray:
    return r - np.hypot(c.yy - cy, c.xx - cx)


def sd_box(c: Canvas, cy: float, cx: float, hh: float, hw: float, corner: float = 0.0) -> np.ndarray:
    corner = min(corner, hh, hw)
    qy = np.abs(c.yy - cy) - (hh - corner)
    qx = np.abs(c.xx - cx) - (hw - corner)
    outside = np.hypot(np.maximum(qy, 0), np.maximum(qx, 0)) + np.minimum(np.maximum(qy, qx), 0)
    return corner - outside


def _sd_diamond(c: Canvas, cy: float, cx: float, r: float) -> np.ndarray:
    return (r - np.abs(c.yy - cy) - np.abs(c.xx - cx)) / np.sqrt(2.0)


def sd_polyline(c: Canvas, points: np.ndarray) -> np.ndarray:
    """Distance of every pixel to a polyline (points: (n, 2) as y, x), one segment at a time."""
    dist = np.full(c.yy.shape, np.inf, dtype=np.float32)
    for (ay, ax), (by, bx) in itertools.pairwise(points):
        ey, ex = by - ay, bx - ax
        t = np.clip(((c.yy - ay) * ey + (c.xx - ax) * ex) / max(ey * ey + ex * ex, 1e-9), 0.0, 1.0)
        np.minimum(dist, np.hypot(c.yy - (ay + t * ey), c.xx - (ax + t * ex)), out=dist)
    return dist


def sd_box_grid(c: Canvas, cy: float, cx: float, step: tuple[float, float], n: tuple[int, int], hh: float,
                 hw: float, corner: float = 0.0) -> np.ndarray:
    """A grid of n[0] × n[1] equal boxes centred at (cy + i·step[0], cx + j·step[1]) in one pass: each pixel
    measures the distance to the nearest box of the grid (the boxes must not overlap)."""
    ky = np.clip(np.rint((c.yy - cy) / step[0]), 0, n[0] - 1) if n[0] > 1 else 0.0
    kx = np.clip(np.rint((c.xx - cx) / step[1]), 0, n[1] - 1) if n[1] > 1 else 0.0
    shifted = Canvas(c.size, c.yy - ky * step[0], c.xx - kx * step[1])
    return sd_box(shifted, cy, cx, hh, hw, corner)


def blend(image: np.ndarray, colour: np.ndarray | float, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return image * (1.0 - a) + np.asarray(colour, dtype=np.float32) * a


def grain_noise(rng: np.random.Generator, size: int, sigma: float | tuple[float, float]) -> np.ndarray:
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


def _piece_sd(c: Canvas, p: Piece, dy: float = 0.0, dx: float = 0.0) -> np.ndarray:
    if p.shape == "square":
        return sd_box(c, p.cy + dy, p.cx + dx, p.r * 0.88, p.r * 0.88, corner=p.r * 0.25)
    if p.shape == "diamond":
        return _sd_diamond(c, p.cy + dy, p.cx + dx, p.r * 1.15)
    return sd_disc(c, p.cy + dy, p.cx + dx, p.r)


def piece_mask(c: Canvas, p: Piece) -> np.ndarray:
    return _piece_sd(c, p) > -0.5


def draw_piece(image: np.ndarray, c: Canvas, p: Piece, light: tuple[float, float]) -> np.ndarray:
    """Draw a shaded piece with a soft drop shadow into ``image`` (in place); ``light`` is the unit (y, x)
    direction the light travels, so the lit side faces against it and the shadow falls along it."""
    shift = max(1.0, p.r * 0.35)
    sy, sx = shift * light[0], shift * light[1]          # the shadow falls the way the light travels
    softness = max(1.5, p.r * 0.3)
    sl, w = c.window(p.cy + sy / 2, p.cx + sx / 2, p.r * 1.25 + shift + softness + 2)
    patch = image[sl]
    shadow = soft_coverage(_piece_sd(w, p, sy, sx), softness=softness)
    patch = patch * (1.0 - 0.35 * shadow[..., None])
    sd = _piece_sd(w, p)
    alpha = soft_coverage(sd)
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
    image[sl] = blend(patch, body, alpha)
    return image
