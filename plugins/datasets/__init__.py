"""Built-in datasets: the procedural captioned-shapes set and loaders for COCO, CUB and plain folders.

Factory contract (kind ``dataset``)::

    factory(params, split="train" | "test", resolutions=[64, 128, 256] | None, registry=..., **ctx)
        -> torch.utils.data.Dataset

``resolutions`` are the per-stage target sizes (low to high); None takes the params' default.
Every dataset returns samples ``{"images": [float32 (3, r, r) in [-1, 1] per resolution],
"tokens": int64 (max_words,), "mask": bool (max_words,) True = real word, "caption": str,
"caption_index": int, "index": int, "class_id": int (-1 if none), "attributes": int64 tensor}``
and exposes ``.vocab`` (``encode(text, max_words) -> (ids, mask)``, ``vocab_size``, ``save``),
``.resolutions``, ``.max_words``, ``.captions(i)`` (all captions of image i), ``.collate``
(adds ``lengths``) and ``set_epoch(epoch)``: the caption drawn, the words kept and the crop are a
function of (seed, epoch, index), also inside DataLoader workers. Details: ``base``, the
``shapes`` package (``shapes.scene``: attribute layout; ``shapes.oracle``), ``real``; user docs
in docs/datasets.md.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import CocoParams, CubParams, FolderParams
from .shapes import ShapesParams


@hookimpl
def t2i_stages_datasets() -> dict[str, ComponentSpec]:
    return {
        "shapes": ComponentSpec(
            "t2i_stages.plugins.datasets.shapes.dataset:shapes_factory",
            ShapesParams,
            "Procedural captioned shapes (1-3 objects, 5-10 captions each), generated once into a cache; has an oracle.",
        ),
        "coco": ComponentSpec(
            "t2i_stages.plugins.datasets.coco:coco_factory",
            CocoParams,
            "MS-COCO captions: official annotation JSON or the AttnGAN/DM-GAN layout.",
        ),
        "cub": ComponentSpec(
            "t2i_stages.plugins.datasets.cub:cub_factory",
            CubParams,
            "CUB-200-2011 birds in the AttnGAN/DM-GAN layout, bbox-cropped.",
        ),
        "folder": ComponentSpec(
            "t2i_stages.plugins.datasets.folder:folder_factory",
            FolderParams,
            "Your own images with sidecar .txt captions or a JSONL manifest.",
        ),
    }
