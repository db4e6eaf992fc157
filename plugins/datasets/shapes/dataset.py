"""The ``shapes`` dataset: procedural captioned shapes, generated once into the cache.

``shapes_factory(params, split="train", resolutions=None, registry=..., **ctx)`` returns a
:class:`ShapesDataset` (a ``torch.utils.data.Dataset`` following the contract in ``base``).
Per sample:

- ``attributes``: int64 ``(max_objects, 14)``, the layout documented in ``scene``:
  per object its shape, colour, size, grid cell and fine detail, plus what the drawn caption
  mentions (``decode_attributes`` turns it into names);
- ``class_id``: the id of the image's multiset of (shape, colour) pairs (``scene.class_id``),
  so the matching losses never use an image showing the same coloured shapes as a negative.

The word vocabulary is the fixed set of words the caption generator can produce, so it does
not depend on the split or on the sampled scenes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import torch

from t2i_stages.plugin import WordVocab

from ..base import (
    CaptionedDataset,
    check_resolutions,
    check_split,
    make_tokenizer,
    split_id,
    to_tensor_image,
)
from .cache import prepare_split
from .captions import caption_words
from .params import ShapesParams
from .scene import class_id, decode_attributes, describe


def shapes_vocab() -> WordVocab:
    """The word vocabulary of every shapes caption (same for all params)."""
    return WordVocab.build([], extra=caption_words())


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class ShapesDataset(CaptionedDataset):
    """One split of the shapes dataset, read from the (memory-mapped) cache."""

    name = "shapes"
    # what an evaluation adds when the recipe lists no metrics, or with eval.attribute_accuracy:
    # the dataset's own ground truth read back by its oracle
    dataset_metrics: tuple[dict[str, Any], ...] = ({"type": "attribute_accuracy"},)

    def oracle(self, resolution: int | None = None) -> Any:
        """The attribute reader trained on this dataset's renders (``oracle/``), cached."""
        from .oracle import load_oracle

        return load_oracle(self, resolution=resolution)

    def __init__(
        self,
        params: ShapesParams,
        split: str = "train",
        resolutions: list[int] | None = None,
        quiet: bool = False,
    ):
        split = check_split(split)
        res = check_resolutions(resolutions, params.resolutions)
        vocab = make_tokenizer(params.tokenizer, params.vocab_path, shapes_vocab)
        super().__init__(
            split=split,
            resolutions=res,
            max_words=params.max_words,
            seed=params.seed,
            vocab=vocab,
            word_subsample=params.word_subsample,
        )
        self.params = params
        self.grid = params.grid
        self.size = params.train_size if split == "train" else params.test_size
        self.cache_path, self.manifest = prepare_split(
            params, split, self.size, split_id(split), res, log=None if quiet else _log
        )
        d = self.cache_path
        self.objects = np.load(d / "objects.npy")
        self.mentions = np.load(d / "mentions.npy")
        self._captions: list[list[str]] = json.loads(
            (d / "captions.json").read_text(encoding="utf-8")
        )["captions"]
        self._class_ids = np.array([class_id(o) for o in self.objects], dtype=np.int64)
        self._maps: dict[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.size

    def captions(self, i: int) -> list[str]:
        return list(self._captions[i])

    def _images(self) -> dict[int, np.ndarray]:
        if self._maps is None:  # opened lazily, once per process (DataLoader workers included)
            self._maps = {
                r: np.load(self.cache_path / f"images_{r}.npy", mmap_mode="r")
                for r in self.resolutions
            }
        return self._maps

    def images_uint8(self, i: int, resolution: int | None = None) -> np.ndarray:
        """The rendered image ``i`` as uint8 (r, r, 3) (highest resolution by default)."""
        return np.asarray(self._images()[resolution or self.resolutions[-1]][i])

    def load_images(self, i: int, rng: np.random.Generator) -> list[torch.Tensor]:
        maps = self._images()
        return [to_tensor_image(maps[r][i]) for r in self.resolutions]

    def attributes(self, i: int, caption_index: int) -> torch.Tensor:
        rows = np.concatenate(
            [self.objects[i], self.mentions[i, caption_index].astype(np.int64)], axis=1
        )
        return torch.from_numpy(rows)

    def class_id(self, i: int, caption_index: int) -> int:
        return int(self._class_ids[i])

    def decode(self, attributes: Any) -> list[dict]:
        """Readable names for an attribute tensor of this dataset."""
        return decode_attributes(attributes, self.grid)

    def describe(self, i: int) -> str:
        return describe(self.objects[i], self.grid)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = None  # memory maps are reopened in the receiving process
        return state


def shapes_factory(
    params: ShapesParams, split: str = "train", resolutions: list[int] | None = None, **ctx: Any
) -> ShapesDataset:
    """Build a shapes split (generating it into the cache on first use)."""
    return ShapesDataset(
        params, split=split, resolutions=resolutions, quiet=bool(ctx.get("quiet", False))
    )
