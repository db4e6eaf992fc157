"""Shared data contracts between plugin kinds (text features, generator output, image features).

Conventions used everywhere:
- images are float tensors in [-1, 1], (B, 3, H, W);
- a word mask is boolean (B, T) and True marks a real word (False = padding), as in Hugging
  Face's attention_mask; fully padded rows must still give finite outputs;
- word features are (B, D, T) (channels first, as AttnGAN/DM-GAN use them), sentences (B, D).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class TextFeatures(NamedTuple):
    """What a text encoder (or a matcher's text side) returns."""

    words: torch.Tensor  # (B, D, T)
    sentence: torch.Tensor  # (B, D)
    mask: torch.Tensor  # (B, T) bool, True = real word
    lengths: torch.Tensor  # (B,) int64


class ImageFeatures(NamedTuple):
    """What a matcher's image side returns."""

    regions: torch.Tensor  # (B, D, N) region features (N = h*w of the region grid)
    code: torch.Tensor  # (B, D) global image code


class GeneratorOutput(NamedTuple):
    """What a generator returns: every stage's image, attention maps and the CA statistics."""

    images: list[torch.Tensor]  # one (B, 3, r_i, r_i) per stage, low to high resolution
    attention: list[torch.Tensor | None]  # per refinement stage: (B, T, h, w) or None
    mu: torch.Tensor | None  # CA mean (B, c_dim) or None
    logvar: torch.Tensor | None  # CA log-variance (B, c_dim) or None
