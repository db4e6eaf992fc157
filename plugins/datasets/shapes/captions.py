"""Captions of the shapes dataset: varied templates, synonyms and attribute orders, each caption
generated from the scene's ground truth together with a record of what it mentions.

Every word a caption can contain appears in the lexicons below, so the word vocabulary is the
fixed set ``caption_words()`` (independent of which scenes were sampled).
"""

from __future__ import annotations

import numpy as np

from t2i_stages.plugin import T2IError, tokenize

from .params import FINES, SHAPES, SIZES, ShapesParams
from .scene import (
    COL_NAMES,
    COLOR_NAMES,
    F_COL,
    F_COLOR,
    F_FINE,
    F_PRESENT,
    F_ROW,
    F_SHAPE,
    F_SIZE,
    M_POS,
    M_REL,
    M_REL_TARGET,
    M_SHAPE,
    ROW_NAMES,
    Scene,
    cell_name,
    relation,
    scene_rng,
)

SHAPE_WORDS = {
    "circle": ("circle", "disc", "round shape"),
    "square": ("square", "block"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "star": ("star",),
    "hexagon": ("hexagon",),
    "cross": ("cross", "plus sign"),
    "pentagon": ("pentagon",),
    "heart": ("heart",),
}
COLOR_WORDS = {
    "red": ("red", "scarlet"),
    "orange": ("orange",),
    "yellow": ("yellow", "golden"),
    "green": ("green",),
    "cyan": ("cyan", "turquoise"),
    "blue": ("blue",),
    "purple": ("purple", "violet"),
    "pink": ("pink",),
    "brown": ("brown",),
    "white": ("white",),
    "black": ("black",),
    "gray": ("gray", "grey"),
}
SIZE_WORDS = {
    "small": ("small", "tiny", "little"),
    "medium": ("medium", "medium sized", "mid sized"),
    "large": ("large", "big", "huge"),
}
FINE_ADJ = {
    "none": ("plain",),
    "dot": ("dotted",),
    "stripes": ("striped",),
    "outline": ("outlined",),
}
FINE_PP = {
    "none": ("without any pattern", "with no markings"),
    "dot": ("with a dot in the middle", "with a dot inside", "with a center dot"),
    "stripes": ("with stripes", "with horizontal stripes"),
    "outline": ("with an outline", "with a dark border", "with a thick outline"),
}
COLOR_POST = ("in {c}", "colored {c}", "that is {c}")
REL_WORDS = {
    0: ("above", "over"),
    1: ("below", "under", "beneath"),
    2: ("to the left of", "left of"),
    3: ("to the right of", "right of"),
}
ROW_SYN = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}
PREFIX_ONE = (
    "",
    "",
    "there is ",
    "an image of ",
    "a picture showing ",
    "this image shows ",
    "we can see ",
)
PREFIX_MANY = ("", "", "an image of ", "a picture showing ", "this image shows ", "we can see ")
FILLER = ("and", "it", "with", "next", "to", "one", "an", "a", "the", "on", "at", "in", "corner")


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def position_phrase(row: int, col: int, grid: int, rng: np.random.Generator) -> str:
    """A phrase placing an object in its cell, e.g. ``in the upper left corner``."""
    name = cell_name(row, col, grid)
    if name == "center":
        return _pick(rng, ("in the center", "in the middle"))
    words = name.split()
    if len(words) == 2:
        words = [_pick(rng, ROW_SYN[w]) if w in ROW_SYN else w for w in words]
        return _pick(rng, ("in the {} corner", "at the {}", "in the {}")).format(" ".join(words))
    if words[0] in ("left", "right"):
        return f"on the {words[0]}"
    return _pick(rng, ("at the {}", "near the {}")).format(words[0])


def _article(next_word: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.1:
        return "one"
    return "an" if next_word[:1] in "aeiou" else "a"


def noun_phrase(obj: np.ndarray, mention: dict, rng: np.random.Generator) -> str:
    """Describe one object, mentioning exactly the attributes flagged in ``mention``."""
    shape = _pick(rng, SHAPE_WORDS[SHAPES[obj[F_SHAPE]]])
    color = _pick(rng, COLOR_WORDS[COLOR_NAMES[obj[F_COLOR]]]) if mention["color"] else None
    size = _pick(rng, SIZE_WORDS[SIZES[obj[F_SIZE]]]) if mention["size"] else None
    fine = FINES[obj[F_FINE]] if mention["fine"] else None
    pre: list[str] = []
    post: list[str] = []
    predicates: list[str] = []
    if size is not None:
        (pre if rng.random() < 0.75 else predicates).append(size)
    if fine is not None and rng.random() < 0.35:
        pre.append(_pick(rng, FINE_ADJ[fine]))
        fine = None
    if color is not None:
        u = rng.random()
        if u < 0.65:
            pre.append(color)
        elif u < 0.85 or predicates:
            predicates.append(color)
        else:
            post.append(_pick(rng, COLOR_POST[:2]).format(c=color))
    if fine is not None:
        post.append(_pick(rng, FINE_PP[fine]))
    if rng.random() < 0.15 and len(pre) == 2:
        pre.reverse()  # "a red small star": attribute order varies
    words = [*pre, shape]
    text = f"{_article(words[0], rng)} {' '.join(words)}"
    if post:
        text += " " + " ".join(post)
    if predicates:
        text += " that is " + " and ".join(predicates)
    return text


def _mentions(
    p: ShapesParams, scene: Scene, rng: np.random.Generator
) -> tuple[list[dict], np.ndarray]:
    objs = scene.objects
    present = [k for k in range(len(objs)) if objs[k, F_PRESENT] == 1]
    rows = np.full((len(objs), 7), -1, dtype=np.int64)
    flags = []
    for k in range(len(objs)):
        if k not in present:
            flags.append({})
            continue
        flags.append(
            {
                "color": rng.random() < p.p_color,
                "size": rng.random() < p.p_size,
                "fine": rng.random() < p.p_fine,
                "position": p.grid > 1 and rng.random() < p.p_position,
            }
        )
    return flags, rows


def caption_scene(
    p: ShapesParams, scene: Scene, rng: np.random.Generator
) -> tuple[str, np.ndarray]:
    """One caption of ``scene`` and its mention rows (max_objects, 7), columns 7-13 of the layout."""
    objs = scene.objects
    flags, rows = _mentions(p, scene, rng)
    present = [k for k in range(len(objs)) if objs[k, F_PRESENT] == 1]
    order = [present[i] for i in rng.permutation(len(present))]
    for k in present:
        rows[k, :] = (
            1,
            int(flags[k]["color"]),
            int(flags[k]["size"]),
            0,
            -1,
            -1,
            int(flags[k]["fine"]),
        )

    def np_of(k: int, absolute: bool) -> str:
        text = noun_phrase(objs[k], flags[k], rng)
        if absolute:
            rows[k, M_POS - M_SHAPE] = 1
            text += " " + position_phrase(int(objs[k, F_ROW]), int(objs[k, F_COL]), p.grid, rng)
        return text

    # A relation between the first two objects of the shuffled order (when asked and possible).
    related = None
    if len(order) >= 2 and flags[order[0]]["position"] and rng.random() < p.p_relation:
        a, b = order[0], order[1]
        rels = relation(objs[a], objs[b])
        rel = rels[int(rng.integers(len(rels)))]
        rows[a, M_POS - M_SHAPE] = 2
        rows[a, M_REL - M_SHAPE] = rel
        rows[a, M_REL_TARGET - M_SHAPE] = b
        related = (a, b, rel)

    clauses: list[str] = []
    if related is not None:
        a, b, rel = related
        rel_word = _pick(rng, REL_WORDS[rel])
        np_a = np_of(a, False)
        np_b = np_of(b, flags[b]["position"])
        form = int(rng.integers(3))
        if form == 0:
            clauses.append(f"{np_a} {rel_word} {np_b}")
        elif form == 1:
            clauses.append(f"there is {np_b}, and {rel_word} it {np_a}")
        else:
            clauses.append(f"{np_b} with {np_a} {rel_word} it")
        rest = order[2:]
    else:
        rest = order
    for k in rest:
        clauses.append(np_of(k, flags[k]["position"]))

    if len(clauses) == 1 and related is None:
        k = order[0]
        if flags[k]["position"] and rng.random() < 0.3:
            rows[k, M_POS - M_SHAPE] = 1
            place = position_phrase(int(objs[k, F_ROW]), int(objs[k, F_COL]), p.grid, rng)
            text = f"{place}, there is {noun_phrase(objs[k], flags[k], rng)}"
        else:
            text = _pick(rng, PREFIX_ONE) + clauses[0]
    else:
        body = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
        text = (_pick(rng, PREFIX_MANY) if not body.startswith("there is") else "") + body
    return text, rows


def scene_captions(
    p: ShapesParams, scene: Scene, split_id: int, index: int
) -> tuple[list[str], np.ndarray]:
    """All captions of an image (``min_captions``..``max_captions``, distinct where possible).

    A caption longer than ``max_caption_words`` is drawn again, so no caption is ever cut.
    """
    rng = scene_rng(p.seed, split_id, index, 1)
    n = int(rng.integers(p.min_captions, p.max_captions + 1))
    texts: list[str] = []
    mentions = np.full((p.max_captions, len(scene.objects), 7), -1, dtype=np.int64)
    tries = 0
    while len(texts) < n:
        text, rows = caption_scene(p, scene, rng)
        tries += 1
        if len(tokenize(text)) > p.max_caption_words:
            if tries > 200 * n:
                raise T2IError(
                    f"shapes: max_caption_words={p.max_caption_words} is too small for these params "
                    "(captions keep exceeding it); raise it or lower the mention probabilities"
                )
            continue
        if text in texts and tries < 20 * n:
            continue
        mentions[len(texts)] = rows
        texts.append(text)
    return texts, mentions


def caption_words() -> list[str]:
    """Every word the caption generator can produce (the shapes word vocabulary)."""
    phrases: list[str] = list(FILLER)
    for table in (SHAPE_WORDS, COLOR_WORDS, SIZE_WORDS, FINE_ADJ, FINE_PP, REL_WORDS):
        for options in table.values():
            phrases.extend(options)
    phrases += list(COLOR_POST) + list(PREFIX_ONE) + list(PREFIX_MANY)
    phrases += [
        "there is",
        "that is",
        "in the center",
        "in the middle",
        "at the",
        "near the",
        "on the",
    ]
    for names in (*ROW_NAMES.values(), *COL_NAMES.values(), *ROW_SYN.values()):
        phrases.extend(names)
    words: set[str] = set()
    for phrase in phrases:
        words.update(tokenize(phrase.replace("{c}", "").replace("{}", "")))
    return sorted(words)
