"""The built-in procedural captioned-shapes dataset.

One job per module: ``params`` (the params and attribute vocabularies), ``scene`` (sampling
scenes, the attribute tensor layout, its decoder), ``captions`` (captions from a scene and what
they mention), ``render`` (anti-aliased images), ``cache`` (a split generated once into the
cache), ``dataset`` (the torch Dataset and the plugin factory); ``oracle`` (a subpackage) reads
attributes back from images. Imports go one way: params <- scene <- captions / render <- cache
<- dataset, and the oracle uses params, scene and render only.
"""

from __future__ import annotations

from t2i_stages.plugin import lazy_exports

from .params import COLORS, FINES, SHAPES, SIZES, ShapesParams

# The rest import numpy or torch: on first use, so registering the plugin imports neither.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "prepare_split": ".cache",
        "split_artefact": ".cache",
        "verify_split": ".cache",
        "caption_words": ".captions",
        "scene_captions": ".captions",
        "ShapesDataset": ".dataset",
        "shapes_factory": ".dataset",
        "shapes_vocab": ".dataset",
        "COLOR_NAMES": ".scene",
        "Scene": ".scene",
        "class_id": ".scene",
        "decode_attributes": ".scene",
        "describe": ".scene",
        "sample_scene": ".scene",
    },
    globals(),
)

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
