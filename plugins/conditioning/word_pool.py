"""Learned attention pooling of the word features: a discriminator's own reading of the caption.

Why: the fixed levels (``sentence``, ``mean_words``) hand a conditional D whatever the frozen text
encoder put in its summary, and a matcher pretrained contrastively can leave a word out of it
(on the demo data the ITM's sentence for "a dotted pink rhombus" and "an outlined pink
rhombus" has cosine 0.98; docs/results.md). With ``word_pool`` the D learns, with its own
weights, which words to look at: ``heads`` learned queries attend over the real words (keys
from a linear map of the word features), and the pooled words of every head are mapped to the
condition vector. Padding never takes part; a caption without words gives the map of zeros.

Parameters: ``D*D + D`` (keys) + ``heads*D`` (queries) + ``heads*D*dim + dim`` (output).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, TextFeatures

from .params import WordPoolParams


class WordPool(nn.Module):
    """``Condition(vector=(B, dim))`` from ``heads`` learned attention reads of the real words."""

    provides = "vector"
    eps_dim = 0

    def __init__(self, text_dim: int, heads: int = 4, dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.dim = dim or text_dim
        self.keys = nn.Linear(text_dim, text_dim)
        self.queries = nn.Parameter(torch.randn(heads, text_dim) / math.sqrt(text_dim))
        self.out = nn.Linear(heads * text_dim, self.dim)

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        words = text.words.transpose(1, 2)  # (B, T, D)
        scores = torch.einsum("btd,hd->bht", self.keys(words), self.queries)
        scores = scores / math.sqrt(words.shape[-1])
        real = text.mask.unsqueeze(1)  # (B, 1, T)
        # a caption with no real word attends to nothing: its weights are all zero
        weights = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=-1)
        weights = torch.nan_to_num(weights, nan=0.0) * real
        pooled = torch.einsum("bht,btd->bhd", weights, words)
        return Condition(vector=self.out(pooled.flatten(1)))


def build_word_pool(params: WordPoolParams, text_dim: int | None = None, **ctx: Any) -> WordPool:
    if text_dim is None:
        raise ValueError("conditioning 'word_pool' needs text_dim from its caller")
    return WordPool(text_dim, params.heads, params.dim)
