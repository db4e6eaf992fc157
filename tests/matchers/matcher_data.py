"""A tiny synthetic captioned dataset and a word-level tokenizer for the matcher tests."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from t2i_stages.text import WordVocab

COLORS = {
    "red": (1.0, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
}
PLACES = ["top left", "top right", "bottom left", "bottom right"]


class TinyCaptioned(Dataset):
    """A coloured square in one quadrant of a black image; caption '<colour> square at <place>'.

    Follows the dataset sample contract (images list per resolution in [-1, 1], tokens, mask,
    caption, class_id) with 16 classes (colour x place).
    """

    def __init__(self, n: int = 64, size: int = 16, offset: int = 0):
        self.n, self.size, self.offset = n, size, offset
        captions = [f"{c} square at {p}" for c in COLORS for p in PLACES]
        self.vocab = WordVocab.build(captions)
        self.max_words = 6

    def __len__(self) -> int:
        return self.n

    def _cls(self, i: int) -> tuple[int, int]:
        k = (i + self.offset) % 16
        return k // 4, k % 4

    def captions(self, i: int) -> list[str]:
        c, p = self._cls(i)
        return [f"{list(COLORS)[c]} square at {PLACES[p]}"]

    def __getitem__(self, i: int) -> dict:
        c, p = self._cls(i)
        s, h = self.size, self.size // 2
        img = -torch.ones(3, s, s)
        r0, c0 = (p // 2) * h, (p % 2) * h
        img[:, r0 + 1 : r0 + h - 1, c0 + 1 : c0 + h - 1] = torch.tensor(list(COLORS.values())[c])[
            :, None, None
        ]
        caption = self.captions(i)[0]
        ids, mask = self.vocab.encode(caption, self.max_words)
        return {
            "images": [img],
            "tokens": torch.tensor(ids, dtype=torch.int64),
            "mask": torch.tensor(mask, dtype=torch.bool),
            "caption": caption,
            "class_id": c * 4 + p,
        }


def word_level_tokenizer(words: list[str]):
    """A Hugging Face fast tokenizer over ``words`` with [BOS] ... [EOS] (built offline)."""
    from t2i_stages.text import word_level_hf_tokenizer

    return word_level_hf_tokenizer(words)
