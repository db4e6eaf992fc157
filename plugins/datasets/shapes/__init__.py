"""The built-in procedural captioned-shapes dataset.

One job per module: ``params`` (the params and attribute vocabularies), ``scene`` (sampling
scenes, the attribute tensor layout, its decoder), ``captions`` (captions from a scene and what
they mention), ``render`` (anti-aliased images), ``cache`` (a split generated once into the
cache), ``dataset`` (the torch Dataset and the plugin factory); ``oracle`` (a subpackage) reads
attributes back from images. Imports go one way: params <- scene <- captions / render <- cache
<- dataset, and the oracle uses params, scene and render only.
"""

from __future__ import annotations

from .cache import prepare_split, split_artefact, verify_split
from .captions import caption_words, scene_captions
from .dataset import ShapesDataset, shapes_factory, shapes_vocab
from .params import COLORS, FINES, SHAPES, SIZES, ShapesParams
from .scene import COLOR_NAMES, Scene, class_id, decode_attributes, describe, sample_scene

__all__ = [
    "COLORS",
    "COLOR_NAMES",
    "FINES",
    "SHAPES",
    "SIZES",
    "Scene",
    "ShapesDataset",
    "ShapesParams",
    "caption_words",
    "class_id",
    "decode_attributes",
    "describe",
    "prepare_split",
    "sample_scene",
    "scene_captions",
    "shapes_factory",
    "shapes_vocab",
    "split_artefact",
    "verify_split",
]
