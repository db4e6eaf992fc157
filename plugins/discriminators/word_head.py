"""A word-level conditional head: one logit per real word, each judged on the regions it reads.

Why: a sentence-level head scores a whole caption against an image, so a mismatched pair is
explained by whichever attribute differs most (shape, colour) and a word that rarely decides
the pair, like a fine detail, is never learnt: on the demo data GR-GAN's D3 picks the true fine
detail of a real image out of four captions only 48% of the time, and its colour 100%
(docs/results.md). Here every real word gets its own logit and its own share of the loss (the
adversarial losses average their logits), so "dotted" must score high on dotted images and low
elsewhere, and the generator must satisfy every word, in the spirit of ControlGAN's word-level
discriminator.

Each word's feature is mapped to the trunk's channels; it attends over the 4x4 grid of the
trunk's features; the logit is a linear map of ``LeakyReLU(word + its attended context)``.

The condition is one tensor, ``(B, T, D + 1)``: the words with the mask as their last channel,
so that the losses' batch slicing (the mismatched pairs) treats it like a sentence vector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t2i_stages.plugin import Condition


def pack_words(condition: Condition) -> torch.Tensor:
    """``(B, D, T)`` words and ``(B, T)`` mask -> ``(B, T, D + 1)``, the mask last."""
    words = condition.words.transpose(1, 2)
    return torch.cat([words, condition.mask.unsqueeze(-1).to(words.dtype)], dim=-1)


class WordRegionHead(nn.Module):
    """``(features (B, C, h, w), packed words (B, T, D + 1)) -> (K,)``, one per real word."""

    def __init__(self, channels: int, text_dim: int):
        super().__init__()
        self.word = nn.Linear(text_dim, channels)
        self.key = nn.Linear(channels, channels, bias=False)
        self.context = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, 1)

    def forward(self, features: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        words, real = packed[..., :-1], packed[..., -1] > 0.5
        regions = features.flatten(2).transpose(1, 2)  # (B, N, C)
        q = self.word(words)  # (B, T, C)
        scores = q @ self.key(regions).transpose(1, 2) / math.sqrt(q.shape[-1])  # (B, T, N)
        read = torch.softmax(scores, dim=-1) @ regions  # (B, T, C)
        logits = self.out(nn.functional.leaky_relu(q + self.context(read), 0.2)).squeeze(-1)
        return logits[real]
