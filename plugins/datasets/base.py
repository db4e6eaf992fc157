"""Machinery every built-in dataset shares: deterministic per-sample randomness, caption drawing,
tokenization, the sample dict and the collate function.

The sample contract (what the training engine, losses and metrics rely on)::

    ds[i] = {
        "images": [float32 (3, r, r) in [-1, 1] for r in ds.resolutions],   # low -> high
        "tokens": int64 (max_words,) zero-padded,
        "mask": bool (max_words,) True = real word,
        "caption": str, "caption_index": int, "index": int (image index),
        "class_id": int (-1 if none),
        "attributes": int64 tensor, dataset-specific ground truth (shape (0,) if none),
    }

Which caption is drawn, which words are kept by subsampling, and any random crop / flip come
from one numpy Generator seeded with ``(seed, epoch, index)``. The epoch lives in a shared-memory
tensor, so ``set_epoch`` reaches DataLoader workers (persistent ones included) and a resumed run
sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

# BadData, BadDataError and DataWarning are the core's bad-data report (t2i_stages.data_files,
# shared with `eval --images`), re-exported here for the loaders
from t2i_stages.plugin import (  # noqa: F401
    BadData,
    BadDataError,
    DataWarning,
    HFTokenizer,
    T2IError,
    WordVocab,
    load_tokenizer,
)

SPLITS = ("train", "test")
_SPLIT_IDS = {"train": 0, "test": 1}


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise T2IError(f"dataset split must be one of {', '.join(SPLITS)}, got '{split}'")
    return split


def check_resolutions(resolutions: Sequence[int] | None, default: Sequence[int]) -> list[int]:
    """Per-stage target sizes, strictly increasing positive ints."""
    res = [int(r) for r in (resolutions if resolutions is not None else default)]
    if (
        not res
        or any(r < 4 for r in res)
        or any(b <= a for a, b in zip(res, res[1:], strict=False))
    ):
        raise T2IError(f"resolutions must be increasing sizes >= 4, got {list(res)}")
    return res


def split_id(split: str) -> int:
    return _SPLIT_IDS[split]


def to_tensor_image(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1]."""
    t = (
        torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True))
        .permute(2, 0, 1)
        .to(torch.float32)
    )
    return t.div_(127.5).sub_(1.0)


def make_tokenizer(spec: str, vocab_path: str | None, build_words: Any) -> WordVocab | HFTokenizer:
    """The tokenizer a dataset's params ask for.

    ``spec == "word"``: a word vocabulary, read from ``vocab_path`` if given (so a trained text
    encoder keeps its indices), else built by calling ``build_words()``; anything else is a local
    Hugging Face tokenizer path.
    """
    if spec == "word":
        if vocab_path:
            return WordVocab.load(vocab_path)
        return build_words()
    if vocab_path:
        return load_tokenizer(vocab_path)
    return HFTokenizer(spec)


class CaptionedDataset(Dataset):
    """Base class: subclasses provide images, captions and attributes for image ``i``."""

    name = "dataset"

    def __init__(
        self,
        *,
        split: str,
        resolutions: list[int],
        max_words: int,
        seed: int,
        vocab: WordVocab | HFTokenizer,
        word_subsample: bool = False,
    ):
        self.split = check_split(split)
        self.resolutions = list(resolutions)
        self.max_words = int(max_words)
        self.seed = int(seed)
        self.vocab = vocab
        self.tokenizer = vocab
        self.word_subsample = bool(word_subsample)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    # ---- to implement -------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def captions(self, i: int) -> list[str]:  # pragma: no cover - abstract
        """All captions of image ``i`` (for evaluation)."""
        raise NotImplementedError

    def load_images(
        self, i: int, rng: np.random.Generator
    ) -> list[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def attributes(self, i: int, caption_index: int) -> torch.Tensor:
        return torch.zeros(0, dtype=torch.int64)

    def class_id(self, i: int, caption_index: int) -> int:
        return -1

    # ---- shared behaviour ---------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose captions/crops are drawn (visible to DataLoader workers)."""
        self._epoch.fill_(int(epoch))

    def rng(self, index: int) -> np.random.Generator:
        """The Generator for sample ``index`` in the current epoch: a function of (seed, epoch, index)."""
        return np.random.default_rng([self.seed, split_id(self.split), self.epoch, int(index)])

    def draw_caption(self, i: int, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.captions(i))))

    def encode(
        self, caption: str, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.vocab.encode(
            caption, self.max_words, rng=rng, subsample=self.word_subsample
        )
        return torch.tensor(ids, dtype=torch.int64), torch.tensor(mask, dtype=torch.bool)

    def sample(self, i: int, caption_index: int | None = None) -> dict[str, Any]:
        """Sample ``i`` of the current epoch; ``caption_index`` forces a caption (evaluation)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(
                f"index {i} out of range for {self.name} {self.split} split of {n} images"
            )
        i = i % n
        rng = self.rng(i)
        ci = self.draw_caption(i, rng) if caption_index is None else int(caption_index)
        caption = self.captions(i)[ci]
        tokens, mask = self.encode(caption, rng)
        images = self.load_images(i, rng)
        return {
            "images": images,
            "tokens": tokens,
            "mask": mask,
            "caption": caption,
            "caption_index": ci,
            "index": i,
            "class_id": int(self.class_id(i, ci)),
            "attributes": self.attributes(i, ci),
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.sample(int(i))

    @staticmethod
    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack a list of samples; adds ``lengths`` (int64, real words per caption).

        Samples stay in the order given (no length sorting: every consumer uses the mask).
        """
        out = default_collate(batch)
        out["lengths"] = out["mask"].sum(dim=1).to(torch.int64)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, images={len(self)}, "
            f"resolutions={self.resolutions}, max_words={self.max_words}, vocab={len(self.vocab)})"
        )
