"""Parameter-free conditioning levels: which part of the text a stage or a discriminator sees.

Each module maps ``(text: TextFeatures, eps=None) -> Condition`` and exposes ``provides``
("vector", "sequence" or "none"), ``dim`` (feature size of what it gives, 0 for none) and
``eps_dim`` (0: they draw no noise).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, Params, TextFeatures, masked_mean

from .params import MeanWordsParams, SequenceParams


def _shift_mask(mask: torch.Tensor) -> torch.Tensor:
    # GR-GAN computes its mask on the un-sliced CLIP tokens (start token included) and then
    # truncates it to T, while the words come from positions 1..T: the mask lags one position,
    # position 0 is always "real", and the last real word's neighbour is left unmasked.
    first = torch.ones_like(mask[:, :1])
    return torch.cat([first, mask[:, :-1]], dim=1)


class Words(nn.Module):
    """The word matrix (B, D, T) and its mask."""

    provides = "sequence"
    eps_dim = 0

    def __init__(self, text_dim: int, shift_mask: bool = False):
        super().__init__()
        self.dim = text_dim
        self.shift_mask = shift_mask

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        mask = _shift_mask(text.mask) if self.shift_mask else text.mask
        return Condition(words=text.words, mask=mask)


class SentenceTiled(Words):
    """The sentence vector repeated over the T word positions, with the caption's mask.

    GR-GAN's stage 2: every memory slot is built from the same sentence, so the addressing is
    uniform over real words and the stage injects one global sentence vector.
    """

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        mask = _shift_mask(text.mask) if self.shift_mask else text.mask
        t = text.mask.shape[1]
        words = text.sentence.unsqueeze(2).expand(-1, -1, t)
        return Condition(words=words, mask=mask)


class Sentence(nn.Module):
    """The raw sentence vector (the AttnGAN/DM-GAN conditional D heads, GR-GAN's D2, DF-GAN)."""

    provides = "vector"
    eps_dim = 0

    def __init__(self, text_dim: int):
        super().__init__()
        self.dim = text_dim

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        return Condition(vector=text.sentence)


class MeanWords(nn.Module):
    """Mean of the word features over word positions -> (B, D)."""

    provides = "vector"
    eps_dim = 0

    def __init__(self, text_dim: int, masked: bool = False):
        super().__init__()
        self.dim = text_dim
        self.masked = masked

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        if not self.masked:
            return Condition(vector=text.words.mean(dim=2))
        return Condition(vector=masked_mean(text.words, text.mask.unsqueeze(1), dim=2))


class NoCondition(nn.Module):
    """No text at all (GR-GAN's D1; an unconditional stage)."""

    provides = "none"
    dim = 0
    eps_dim = 0

    def forward(
        self, text: TextFeatures | None = None, eps: torch.Tensor | None = None
    ) -> Condition:
        return Condition()


def _need_dim(name: str, text_dim: int | None) -> int:
    if text_dim is None:
        raise ValueError(f"conditioning '{name}' needs text_dim from its caller")
    return text_dim


def build_words(params: SequenceParams, text_dim: int | None = None, **ctx: Any) -> Words:
    return Words(_need_dim("words", text_dim), params.shift_mask)


def build_sentence_tiled(
    params: SequenceParams, text_dim: int | None = None, **ctx: Any
) -> SentenceTiled:
    return SentenceTiled(_need_dim("sentence_tiled", text_dim), params.shift_mask)


def build_sentence(params: Params, text_dim: int | None = None, **ctx: Any) -> Sentence:
    return Sentence(_need_dim("sentence", text_dim))


def build_mean_words(params: MeanWordsParams, text_dim: int | None = None, **ctx: Any) -> MeanWords:
    return MeanWords(_need_dim("mean_words", text_dim), params.masked)


def build_none(params: Params, **ctx: Any) -> NoCondition:
    return NoCondition()
