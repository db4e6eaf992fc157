"""The data contracts between plugin kinds: what each kind hands the next.

A text encoder gives ``TextFeatures``; a conditioning level turns them into a ``Condition``
(a vector (B, C), or a word sequence (B, C, T) with its mask, or nothing); a fusion block returns
``FusionOutput``, a stage ``StageOutput``, a generator ``GeneratorOutput``; a matcher's image
side gives ``ImageFeatures``. Conditioning levels declare what they give (``provides``) and
fusion blocks what they need (``requires``), both a ``Provides`` value, so a stage can refuse a
mismatch when it is built (``contracts.check_fit``). Plugins import them from
``t2i_stages.plugin``.

Conventions used everywhere:
- images are float tensors in [-1, 1], (B, 3, H, W);
- a word mask is boolean (B, T) and True marks a real word (False = padding), as in Hugging
  Face's attention_mask; fully padded rows must still give finite outputs;
- word features are (B, D, T) (channels first, as AttnGAN/DM-GAN use them), sentences (B, D).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

Provides = Literal["vector", "sequence", "none"]
"""What a conditioning level gives (``provides``) and a fusion block needs (``requires``)."""


class TextFeatures(NamedTuple):
    """What a text encoder (or a matcher's text side) returns."""

    words: torch.Tensor  # (B, D, T)
    sentence: torch.Tensor  # (B, D)
    mask: torch.Tensor  # (B, T) bool, True = real word
    lengths: torch.Tensor  # (B,) int64
    # (B, T') int64 token ids, where the caller had them (training attaches the batch's): for a
    # discriminator's own trainable reading of the caption (conditioning ``token_embedding``)
    tokens: torch.Tensor | None = None


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
