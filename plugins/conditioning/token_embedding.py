"""A discriminator's own word embedding: a bag of learned word vectors, read from the token ids.

Why: a frozen matcher may barely tell some words apart. The demo ITM puts "dotted" and
"outlined" at cosine 0.81 as words and 0.93 as sentences (colour words: 0.40), and a D that
reads those features learns the fine detail only weakly (docs/results.md). With its own
embedding, every word is a separate row the D trains: the condition is the mean of the real
words' rows, through a linear map. Order is ignored (a bag of words), which is what attribute
captions need and what keeps it cheap.

The ids come from ``TextFeatures.tokens``, which training attaches to every batch. They are
hashed into ``buckets`` rows (``id % buckets``), so the level needs no vocabulary size and
works with any tokenizer; a vocabulary larger than ``buckets`` shares rows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, PluginError, TextFeatures, masked_mean

from .params import TokenEmbeddingParams


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
        if text.tokens is None:
            raise PluginError(
                "conditioning 'token_embedding': these text features carry no token ids "
                "(TextFeatures.tokens); training attaches them, a caller outside it must too"
            )
        ids = text.tokens.long()
        real = text.mask if text.mask.shape == ids.shape else ids != 0
        vectors = self.embedding(ids % self.buckets)  # (B, T, dim)
        return Condition(vector=self.out(masked_mean(vectors, real.unsqueeze(-1), dim=1)))


def build_token_embedding(
    params: TokenEmbeddingParams, text_dim: int | None = None, **ctx: Any
) -> TokenEmbedding:
    dim = params.dim or text_dim
    if dim is None:
        raise ValueError(
            "conditioning 'token_embedding' needs params.dim or text_dim from its caller"
        )
    return TokenEmbedding(dim, params.buckets)
