"""Learned word embeddings read from the token ids: a discriminator's bag of words
(``token_embedding``) and a generator stage's own word vectors beside the frozen ones
(``token_words``).

Why: a frozen matcher may barely tell some words apart. The demo ITM puts "dotted" and
"outlined" at cosine 0.81 as words and 0.93 as sentences (colour words: 0.40), and a D that
reads those features learns the fine detail only weakly (docs/results.md). With its own
embedding, every word is a separate row the D trains: the condition is the mean of the real
words' rows, through a linear map. Order is ignored (a bag of words), which is what attribute
captions need and what keeps it cheap.

``token_words`` is the generator's side of the same idea: a stage that reads the words
(dynamic memory, attention) gets, at every real word position, the frozen word feature plus a
linear map of that word's own learned vector, trained by the generator. A generator that sees
"dotted" and "outlined" as nearly one input cannot draw the one a D asks for except by
hedging between them; with its own rows it need not.

The ids come from ``TextFeatures.tokens``, which training attaches to every batch. They are
hashed into ``buckets`` rows (``id % buckets``), so the level needs no vocabulary size and
works with any tokenizer; a vocabulary larger than ``buckets`` shares rows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, PluginError, TextFeatures, masked_mean

from .levels import Words
from .params import TokenEmbeddingParams, TokenWordsParams


def _token_ids(text: TextFeatures, level: str) -> torch.Tensor:
    if text.tokens is None:
        raise PluginError(
            f"conditioning '{level}': these text features carry no token ids "
            "(TextFeatures.tokens); training attaches them, a caller outside it must too"
        )
    return text.tokens.long()


class TokenEmbedding(nn.Module):
    """``Condition(vector=(B, dim))``: a linear map of the mean learned vector of the real words."""

    provides = "vector"
    eps_dim = 0

    def __init__(self, dim: int, buckets: int = 4096):
        super().__init__()
        self.dim = dim
        self.buckets = buckets
        self.embedding = nn.Embedding(buckets, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        ids = _token_ids(text, "token_embedding")
        real = text.mask if text.mask.shape == ids.shape else ids != 0
        vectors = self.embedding(ids % self.buckets)  # (B, T, dim)
        return Condition(vector=self.out(masked_mean(vectors, real.unsqueeze(-1), dim=1)))


class TokenWords(Words):
    """``Condition(words=(B, D, T), mask)``: the ``words`` level's words plus a linear map of
    each real word's own learned vector (padding positions get nothing added)."""

    reads_token_ids = True  # the ONNX generator graph takes no ids: export refuses it

    def __init__(
        self, text_dim: int, buckets: int = 4096, zero_init: bool = True, shift_mask: bool = False
    ):
        super().__init__(text_dim, shift_mask)
        self.buckets = buckets
        self.embedding = nn.Embedding(buckets, text_dim)
        self.out = nn.Linear(text_dim, text_dim)
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        ids = _token_ids(text, "token_words")
        if ids.shape != text.mask.shape:
            raise PluginError(
                f"conditioning 'token_words': token ids {tuple(ids.shape)} do not line up with "
                f"the word mask {tuple(text.mask.shape)} (one id per word position is needed)"
            )
        added = self.out(self.embedding(ids % self.buckets))  # (B, T, D)
        added = added * text.mask.unsqueeze(-1).to(added.dtype)
        plain = super().forward(text)
        return plain._replace(words=plain.words + added.transpose(1, 2).to(plain.words.dtype))


def build_token_words(
    params: TokenWordsParams, text_dim: int | None = None, **ctx: Any
) -> TokenWords:
    if text_dim is None:
        raise ValueError("conditioning 'token_words' needs text_dim from its caller")
    return TokenWords(text_dim, params.buckets, params.zero_init, params.shift_mask)


def build_token_embedding(
    params: TokenEmbeddingParams, text_dim: int | None = None, **ctx: Any
) -> TokenEmbedding:
    dim = params.dim or text_dim
    if dim is None:
        raise ValueError(
            "conditioning 'token_embedding' needs params.dim or text_dim from its caller"
        )
    return TokenEmbedding(dim, params.buckets)
