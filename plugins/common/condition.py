"""Contracts between conditioning levels, fusion blocks and stages.

A conditioning level turns ``TextFeatures`` into a ``Condition``: either a vector (B, C) — CA
sample, raw sentence, mean of the words — or a sequence (B, C, T) with its boolean mask
(True = real word), or nothing. Fusion blocks declare which of the two they need
(``requires = "vector" | "sequence"``) so a stage can refuse a mismatch at build time.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

Provides = Literal["vector", "sequence", "none"]


class Condition(NamedTuple):
    """What a conditioning level gives a stage, a fusion block or a discriminator head."""

    vector: torch.Tensor | None = None  # (B, C)
    words: torch.Tensor | None = None  # (B, C, T)
    mask: torch.Tensor | None = None  # (B, T) bool, True = real word
    mu: torch.Tensor | None = None  # CA mean (B, c_dim)
    logvar: torch.Tensor | None = None  # CA log-variance (B, c_dim)


class FusionOutput(NamedTuple):
    """What a fusion block returns: fused features (B, out_channels, H, W) and attention."""

    features: torch.Tensor
    attention: torch.Tensor | None = None  # (B, T, H, W): weights of each word at each pixel


class StageOutput(NamedTuple):
    """What a generator stage returns."""

    features: torch.Tensor  # (B, out_channels, r, r)
    attention: torch.Tensor | None = None  # (B, T, h, w) at the stage's input resolution
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
