"""Parameters of the procedural captioned-shapes dataset, and the attribute vocabularies."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import Field, model_validator

from t2i_stages.plugin import (
    MAX_CAPTIONS,
    MAX_LAYERS,
    MAX_RESOLUTION,
    MAX_SAMPLES,
    MAX_TOKENS,
    Params,
)

# Attribute values (the index in each tuple is the id stored in the attribute tensor).
SHAPES = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "hexagon",
    "cross",
    "pentagon",
    "heart",
)
COLORS = {
    "red": (220, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 25),
    "green": (35, 165, 60),
    "cyan": (25, 195, 205),
    "blue": (35, 75, 215),
    "purple": (135, 55, 195),
    "pink": (245, 115, 185),
    "brown": (135, 80, 35),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SIZES = ("small", "medium", "large")
SIZE_RADIUS = {"small": 0.22, "medium": 0.31, "large": 0.40}  # half-extent, fraction of a cell
FINES = ("none", "dot", "stripes", "outline")

ShapeName = Literal[
    "circle", "square", "triangle", "diamond", "star", "hexagon", "cross", "pentagon", "heart"
]
ColorName = Literal[
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "pink",
    "brown",
    "white",
    "black",
    "gray",
]
SizeName = Literal["small", "medium", "large"]
FineName = Literal["none", "dot", "stripes", "outline"]

# Fields that change what is generated (images or captions); the cache key hashes exactly these.
CONTENT_FIELDS = (
    "seed",
    "min_objects",
    "max_objects",
    "grid",
    "shapes",
    "colors",
    "sizes",
    "fine_attributes",
    "background",
    "object_scale",
    "jitter",
    "supersample",
    "min_captions",
    "max_captions",
    "p_color",
    "p_size",
    "p_position",
    "p_relation",
    "p_fine",
    "max_caption_words",
)
GENERATOR_VERSION = 1


class ShapesParams(Params):
    """The procedural captioned-shapes dataset: 1-3 coloured shapes on a grid, 5-10 captions each.

    Deterministic from ``seed`` and these params; generated on first use into a cache folder
    and regenerated only when a field that changes the content changes. Defaults follow the
    issue (1-3 objects, 7 shapes, 8 colours, 3 sizes, a 3x3 grid, a fine attribute, varied
    background); a CPU demo can pick ``max_objects: 1, grid: 1, sizes: [large], background: plain``.
    """

    seed: int = Field(0, description="Seed of the whole dataset (scenes, captions, caption draws).")
    train_size: int = Field(10_000, le=MAX_SAMPLES, ge=1, description="Images in the train split.")
    test_size: int = Field(2_000, le=MAX_SAMPLES, ge=1, description="Images in the test split.")
    resolutions: list[Annotated[int, Field(ge=1, le=MAX_RESOLUTION)]] = Field(
        default_factory=lambda: [64, 128, 256],
        max_length=MAX_LAYERS,
        description="Default per-stage image sizes (low to high) when the caller gives none.",
    )
    min_objects: int = Field(1, ge=1, le=9, description="Fewest objects in an image.")
    max_objects: int = Field(
        3,
        ge=1,
        le=9,
        description="Most objects in an image (also the rows of the attribute tensor).",
    )
    grid: int = Field(
        3,
        ge=1,
        le=3,
        description="Positions form a grid x grid layout of cells, one object per cell.",
    )
    shapes: list[ShapeName] = Field(
        default_factory=lambda: [
            "circle",
            "square",
            "triangle",
            "diamond",
            "star",
            "cross",
        ],
        min_length=1,
        description="Shape kinds used.",
    )
    colors: list[ColorName] = Field(
        default_factory=lambda: [
            "red",
            "orange",
            "yellow",
            "green",
            "cyan",
            "blue",
            "purple",
            "pink",
        ],
        min_length=1,
        description="Object colours used.",
    )
    sizes: list[SizeName] = Field(
        default_factory=lambda: ["small", "medium", "large"],
        min_length=1,
        description="Object sizes used.",
    )
    fine_attributes: list[FineName] = Field(
        default_factory=lambda: ["none", "dot", "stripes", "outline"],
        min_length=1,
        description="Fine details drawn inside objects (legible only at the higher resolutions).",
    )
    background: Literal["plain", "varied"] = Field(
        "varied", description="plain: one light grey; varied: random neutral tones with a gradient."
    )
    object_scale: float = Field(
        1.0,
        gt=0.3,
        le=1.2,
        description="Multiplies object sizes (1.2 makes large objects fill their cell).",
    )
    jitter: float = Field(
        1.0, ge=0, le=1, description="Share of the free room in a cell used to offset objects."
    )
    supersample: int = Field(
        4, ge=1, le=8, description="Anti-aliasing: shapes are drawn at this many times the size."
    )
    min_captions: int = Field(5, le=MAX_CAPTIONS, ge=1, description="Fewest captions per image.")
    max_captions: int = Field(10, le=MAX_CAPTIONS, ge=1, description="Most captions per image.")
    p_color: float = Field(
        0.9, ge=0, le=1, description="Probability a caption mentions an object's colour."
    )
    p_size: float = Field(
        0.5, ge=0, le=1, description="Probability a caption mentions an object's size."
    )
    p_position: float = Field(
        0.7, ge=0, le=1, description="Probability a caption places an object (grid > 1)."
    )
    p_relation: float = Field(
        0.5,
        ge=0,
        le=1,
        description="With several objects: probability a placement is a relation to another object.",
    )
    p_fine: float = Field(
        0.4, ge=0, le=1, description="Probability a caption mentions an object's fine attribute."
    )
    max_caption_words: int = Field(
        40,
        le=MAX_TOKENS,
        ge=12,
        description="Longest caption generated (longer draws are redrawn, so none is ever cut).",
    )
    max_words: int = Field(
        40,
        le=MAX_TOKENS,
        ge=1,
        description="Word positions per caption given to the text encoder (longer captions are cut).",
    )
    word_subsample: bool = Field(
        False,
        description="Keep a random ordered subset of words when a caption is too long (the references' way).",
    )
    tokenizer: str = Field(
        "word",
        description="'word' for the built-in word vocabulary, else a local Hugging Face tokenizer path.",
    )
    vocab_path: str | None = Field(
        None, description="A saved vocabulary / tokenizer to use instead of building one."
    )
    cache_dir: str | None = Field(
        None,
        description="Cache root, in place of $T2I_STAGES_HOME/cache (default ~/.cache/t2i-stages/cache).",
    )
    workers: int = Field(
        0, le=MAX_LAYERS, ge=0, description="Processes used to render on first use; 0 = automatic."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ShapesParams:
        if self.min_objects > self.max_objects:
            raise ValueError("min_objects must not exceed max_objects")
        if self.max_objects > self.grid * self.grid:
            raise ValueError(
                f"max_objects={self.max_objects} does not fit a {self.grid}x{self.grid} grid (one object per cell)"
            )
        if self.min_captions > self.max_captions:
            raise ValueError("min_captions must not exceed max_captions")
        for name in ("shapes", "colors", "sizes", "fine_attributes"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice")
        if max(SIZE_RADIUS[s] for s in self.sizes) * self.object_scale > 0.5:
            raise ValueError("object_scale too large: the largest size would leave its cell")
        return self

    def content(self) -> dict:
        """The fields that determine the generated data (what the cache key hashes)."""
        data = self.model_dump()
        out = {k: data[k] for k in CONTENT_FIELDS}
        out["version"] = GENERATOR_VERSION
        return out

    def content_key(self) -> str:
        blob = json.dumps(self.content(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
