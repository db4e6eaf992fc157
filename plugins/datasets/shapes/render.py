"""Anti-aliased rendering of shapes scenes at any resolution (numpy + Pillow, no torch).

Each object is drawn as coverage masks at ``supersample`` times the target size on a small
canvas around it, box-reduced to the target grid and composited exactly:
``pixel = bg * (1 - a) + body * (a - f) + detail * f`` with ``a`` the body coverage and ``f`` the
coverage of its fine detail. Geometry is continuous (cell units), so every resolution shows the
same scene and the same seed gives byte-identical images.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from .params import COLORS, FINES, SHAPES, SIZE_RADIUS, SIZES
from .scene import (
    COLOR_NAMES,
    F_COL,
    F_COLOR,
    F_FINE,
    F_PRESENT,
    F_ROW,
    F_SHAPE,
    F_SIZE,
    Scene,
)

DARK = np.array((25, 25, 25), dtype=np.float64)
LIGHT = np.array((245, 245, 245), dtype=np.float64)


def _regular(n: int, radius: float, start: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [
        (
            radius * math.cos(start + 2 * math.pi * i / n),
            radius * math.sin(start + 2 * math.pi * i / n),
        )
        for i in range(n)
    ]


def _star() -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        r = 1.0 if i % 2 == 0 else 0.45
        a = -math.pi / 2 + math.pi * i / 5
        pts.append((r * math.cos(a), r * math.sin(a) + 0.08))
    return pts


def _cross() -> list[tuple[float, float]]:
    w, e = 0.32, 0.95
    return [
        (-w, -e),
        (w, -e),
        (w, -w),
        (e, -w),
        (e, w),
        (w, w),
        (w, e),
        (-w, e),
        (-w, w),
        (-e, w),
        (-e, -w),
        (-w, -w),
    ]


def _heart() -> list[tuple[float, float]]:
    pts = []
    for i in range(48):
        t = 2 * math.pi * i / 48
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x / 17.0, -y / 17.0 + 0.05))
    return pts


def _triangle() -> list[tuple[float, float]]:
    pts = _regular(3, 1.1)
    return [(x, y + 0.28) for x, y in pts]


# Unit outlines (radius ~1, y down); None = circle.
OUTLINES: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,
    "square": [(-0.84, -0.84), (0.84, -0.84), (0.84, 0.84), (-0.84, 0.84)],
    "triangle": _triangle(),
    "diamond": [(0.0, -1.0), (0.72, 0.0), (0.0, 1.0), (-0.72, 0.0)],
    "star": _star(),
    "hexagon": _regular(6, 0.98),
    "cross": _cross(),
    "pentagon": [(x, y + 0.06) for x, y in _regular(5, 0.98)],
    "heart": _heart(),
}
CIRCLE_R = 0.92
DOT_R = 0.38
OUTLINE_INSET = 0.70  # the outline is the body minus the body scaled by this factor
STRIPE_BANDS = 5  # dark bands 1 and 3 of 5 across the object's height


def background_image(bg: np.ndarray, res: int) -> np.ndarray:
    """(res, res, 3) float64 linear gradient between two tones along an angle."""
    t0, t1, angle = bg[0:3], bg[3:6], bg[6]
    coords = (np.arange(res, dtype=np.float64) + 0.5) / res - 0.5
    proj = coords[None, :] * math.cos(angle) + coords[:, None] * math.sin(angle)
    proj = proj / math.sqrt(2.0) + 0.5  # in [0, 1]
    return t0[None, None, :] + (t1 - t0)[None, None, :] * proj[:, :, None]


def _draw(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, radius: float, fill: int
) -> None:
    outline = OUTLINES[shape]
    if outline is None:
        r = radius * CIRCLE_R
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx + x * radius, cy + y * radius) for x, y in outline], fill=fill)


def object_masks(
    shape: str, fine: str, cx: float, cy: float, radius: float, res: int, ss: int
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Coverage of an object's body and of its fine detail on a small canvas.

    Returns ``(x0, y0, body, detail)``: the canvas origin in pixels and two float (h, w) arrays
    in [0, 1], ``detail`` already clipped to the body.
    """
    pad = 2
    x0 = max(0, int(math.floor(cx - radius)) - pad)
    y0 = max(0, int(math.floor(cy - radius)) - pad)
    x1 = min(res, int(math.ceil(cx + radius)) + pad)
    y1 = min(res, int(math.ceil(cy + radius)) + pad)
    w, h = x1 - x0, y1 - y0
    lx, ly, lr = (cx - x0) * ss, (cy - y0) * ss, radius * ss
    body = Image.new("L", (w * ss, h * ss), 0)
    _draw(ImageDraw.Draw(body), shape, lx, ly, lr, 255)
    detail = None
    if fine != "none":
        detail = Image.new("L", (w * ss, h * ss), 0)
        dd = ImageDraw.Draw(detail)
        if fine == "dot":
            r = DOT_R * lr
            dd.ellipse((lx - r, ly - r, lx + r, ly + r), fill=255)
        elif fine == "stripes":
            band = 2.0 * lr / STRIPE_BANDS
            top = ly - lr
            for k in (1, 3):
                y_top = top + k * band
                dd.rectangle((0, y_top, w * ss, max(y_top, y_top + band - 1)), fill=255)
        elif fine == "outline":
            dd.rectangle((0, 0, w * ss, h * ss), fill=255)
            _draw(dd, shape, lx, ly, lr * OUTLINE_INSET, 0)
        detail = ImageChops.multiply(detail, body)
    if ss > 1:
        body = body.reduce(ss)
        detail = detail.reduce(ss) if detail is not None else None
    a = np.asarray(body, dtype=np.float64) / 255.0
    f = np.asarray(detail, dtype=np.float64) / 255.0 if detail is not None else np.zeros_like(a)
    return x0, y0, a, np.minimum(f, a)


def render_scene(scene: Scene, res: int, grid: int, object_scale: float, ss: int) -> np.ndarray:
    """The scene as uint8 (res, res, 3)."""
    img = background_image(scene.background, res)
    cell = res / grid
    for k, obj in enumerate(scene.objects):
        if obj[F_PRESENT] != 1:
            continue
        dx, dy = scene.offsets[k]
        cx = (obj[F_COL] + 0.5 + dx) * cell
        cy = (obj[F_ROW] + 0.5 + dy) * cell
        radius = SIZE_RADIUS[SIZES[obj[F_SIZE]]] * object_scale * cell
        color = np.array(COLORS[COLOR_NAMES[obj[F_COLOR]]], dtype=np.float64)
        detail_color = LIGHT if color.mean() < 70 else DARK
        x0, y0, a, f = object_masks(
            SHAPES[obj[F_SHAPE]], FINES[obj[F_FINE]], cx, cy, radius, res, ss
        )
        h, w = a.shape
        region = img[y0 : y0 + h, x0 : x0 + w]
        region *= (1.0 - a)[:, :, None]
        region += (a - f)[:, :, None] * color[None, None, :] + f[:, :, None] * detail_color[
            None, None, :
        ]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
