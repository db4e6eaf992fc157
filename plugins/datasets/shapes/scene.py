"""Scenes of the shapes dataset: sampling, the attribute tensor layout, grid cell names, and the
decoder of attribute tensors.

The attribute tensor of a sample is int64 ``(max_objects, 14)``; row k describes object k, objects
in canonical order (by grid cell, row-major). Columns:

====  ==================  =====================================================================
 0    present             1 for an object, 0 for an unused row (every other column is -1 then)
 1    shape               index into ``params.SHAPES`` (global ids, not the params list)
 2    color               index into ``COLORS`` (insertion order)
 3    size                index into ``SIZES``
 4    row                 grid row (0 = top)
 5    col                 grid column (0 = left)
 6    fine                index into ``FINES`` (0 = none)
 7    mentions shape      1 if the drawn caption names the object's shape (always 1 here)
 8    mentions color      1/0
 9    mentions size       1/0
10    mentions position   0 not placed, 1 absolute cell ("in the top left"), 2 relation
11    relation            -1, or 0 above, 1 below, 2 left of, 3 right of (object k REL object j)
12    relation target     -1, or j, the row of the other object
13    mentions fine       1/0
====  ==================  =====================================================================

Columns 0-6 are the image's ground truth; 7-13 depend on the caption drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import COLORS, FINES, SHAPES, SIZE_RADIUS, SIZES, ShapesParams

COLOR_NAMES = tuple(COLORS)
OBJ_FIELDS = ("present", "shape", "color", "size", "row", "col", "fine")
MENTION_FIELDS = (
    "m_shape",
    "m_color",
    "m_size",
    "m_position",
    "relation",
    "relation_target",
    "m_fine",
)
FIELDS = OBJ_FIELDS + MENTION_FIELDS
F_PRESENT, F_SHAPE, F_COLOR, F_SIZE, F_ROW, F_COL, F_FINE = range(7)
M_SHAPE, M_COLOR, M_SIZE, M_POS, M_REL, M_REL_TARGET, M_FINE = range(7, 14)
RELATIONS = ("above", "below", "left of", "right of")
REL_ABOVE, REL_BELOW, REL_LEFT, REL_RIGHT = range(4)

# Background tones for background: varied (neutral, so every object colour stands out).
BG_TONES = (
    (205, 205, 205),
    (226, 218, 198),
    (188, 200, 212),
    (72, 76, 84),
    (160, 150, 140),
    (206, 220, 204),
)
PLAIN_BG = (200, 200, 200)

# Names of grid rows and columns by grid size (also caption words: ``captions`` uses them).
ROW_NAMES = {1: ("",), 2: ("top", "bottom"), 3: ("top", "middle", "bottom")}
COL_NAMES = {1: ("",), 2: ("left", "right"), 3: ("left", "center", "right")}


@dataclass
class Scene:
    """One image: objects (int64 (max_objects, 7)), offsets in cell units, background recipe."""

    objects: np.ndarray  # (max_objects, 7) int64, canonical order, absent rows -1 with present 0
    offsets: np.ndarray  # (max_objects, 2) float64 (dx, dy) in cell units
    background: np.ndarray  # (8,) float64: tone0 rgb, tone1 rgb, angle, unused

    @property
    def count(self) -> int:
        return int((self.objects[:, F_PRESENT] == 1).sum())


def scene_rng(seed: int, split_id: int, index: int, stream: int) -> np.random.Generator:
    """Independent streams per image: 0 = scene, 1 = captions (so parallel generation is exact)."""
    return np.random.default_rng([int(seed), int(split_id), int(index), int(stream)])


def sample_scene(p: ShapesParams, split_id: int, index: int) -> Scene:
    """The scene of image ``index`` of a split: a pure function of the params and the index."""
    rng = scene_rng(p.seed, split_id, index, 0)
    n = int(rng.integers(p.min_objects, p.max_objects + 1))
    cells = np.sort(rng.choice(p.grid * p.grid, size=n, replace=False))
    objects = np.full((p.max_objects, 7), -1, dtype=np.int64)
    objects[:, F_PRESENT] = 0
    offsets = np.zeros((p.max_objects, 2), dtype=np.float64)
    for k, cell in enumerate(cells):
        size = p.sizes[int(rng.integers(len(p.sizes)))]
        objects[k] = (
            1,
            SHAPES.index(p.shapes[int(rng.integers(len(p.shapes)))]),
            COLOR_NAMES.index(p.colors[int(rng.integers(len(p.colors)))]),
            SIZES.index(size),
            int(cell) // p.grid,
            int(cell) % p.grid,
            FINES.index(p.fine_attributes[int(rng.integers(len(p.fine_attributes)))]),
        )
        room = max(0.0, 0.5 - SIZE_RADIUS[size] * p.object_scale - 0.03) * p.jitter
        offsets[k] = rng.uniform(-room, room, size=2)
    background = np.zeros(8, dtype=np.float64)
    if p.background == "plain":
        background[0:3] = PLAIN_BG
        background[3:6] = PLAIN_BG
    else:
        tone = np.array(BG_TONES[int(rng.integers(len(BG_TONES)))], dtype=np.float64)
        t0 = np.clip(tone + rng.uniform(-12, 12, size=3), 0, 255)
        shift = rng.uniform(-35, 35) + rng.uniform(-8, 8, size=3)
        background[0:3] = t0
        background[3:6] = np.clip(t0 + shift, 0, 255)
        background[6] = rng.uniform(0, 2 * np.pi)
    return Scene(objects, offsets, background)


def relation(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Relations that hold for object row ``a`` relative to ``b`` (a is above b, ...)."""
    out = []
    if a[F_ROW] < b[F_ROW]:
        out.append(REL_ABOVE)
    if a[F_ROW] > b[F_ROW]:
        out.append(REL_BELOW)
    if a[F_COL] < b[F_COL]:
        out.append(REL_LEFT)
    if a[F_COL] > b[F_COL]:
        out.append(REL_RIGHT)
    return out


def cell_name(row: int, col: int, grid: int) -> str:
    """``top left``, ``top``, ``left``, ``center`` ... for a grid cell."""
    if grid == 1:
        return "center"
    r, c = ROW_NAMES[grid][row], COL_NAMES[grid][col]
    if r == "middle" and c == "center":
        return "center"
    if r == "middle":
        return c
    if c == "center":
        return r
    return f"{r} {c}"


def class_id(objects: np.ndarray) -> int:
    """Id of the image's multiset of (shape, colour) pairs, for the matching losses' class masks.

    Two images get the same id exactly when they show the same shapes in the same colours
    (sizes, places and fine details aside), so they are not used as each other's negatives.
    """
    base = len(SHAPES) * len(COLOR_NAMES) + 1
    pairs = sorted(
        int(o[F_SHAPE]) * len(COLOR_NAMES) + int(o[F_COLOR]) + 1
        for o in objects
        if o[F_PRESENT] == 1
    )
    cid = 0
    for code in pairs:
        cid = cid * base + code
    return cid


def decode_attributes(attributes, grid: int = 3) -> list[dict]:
    """Readable form of one sample's attribute tensor ((max_objects, 7) or (max_objects, 14)).

    Returns one dict per present object: ``{"shape": "star", "color": "red", "size": "small",
    "position": "top left", "row": 0, "col": 0, "fine": "dot", "mentions": {...}}``.
    """
    arr = np.asarray(attributes.cpu() if hasattr(attributes, "cpu") else attributes)
    out = []
    for row in arr:
        if row[F_PRESENT] != 1:
            continue
        obj = {
            "shape": SHAPES[row[F_SHAPE]],
            "color": COLOR_NAMES[row[F_COLOR]],
            "size": SIZES[row[F_SIZE]],
            "position": cell_name(int(row[F_ROW]), int(row[F_COL]), grid),
            "row": int(row[F_ROW]),
            "col": int(row[F_COL]),
            "fine": FINES[row[F_FINE]],
        }
        if len(row) > M_SHAPE:
            m = {
                "shape": bool(row[M_SHAPE] == 1),
                "color": bool(row[M_COLOR] == 1),
                "size": bool(row[M_SIZE] == 1),
                "fine": bool(row[M_FINE] == 1),
                "position": {0: None, 1: "absolute", 2: "relation"}.get(int(row[M_POS])),
            }
            if row[M_POS] == 2:
                m["relation"] = f"{RELATIONS[row[M_REL]]} object {int(row[M_REL_TARGET])}"
            obj["mentions"] = m
        out.append(obj)
    return out


def describe(attributes, grid: int = 3) -> str:
    """One line per object, e.g. ``small red star (dot) at top left``."""
    parts = []
    for o in decode_attributes(attributes, grid):
        fine = "" if o["fine"] == "none" else f" ({o['fine']})"
        parts.append(f"{o['size']} {o['color']} {o['shape']}{fine} at {o['position']}")
    return "; ".join(parts)
