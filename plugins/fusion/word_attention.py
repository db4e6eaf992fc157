"""AttnGAN's word attention (reference §2.1, NEXT_STAGE_G steps 1-3).

Words (B, nef, T) are projected by a 1x1 conv (no bias) to the image channels; each pixel scores
every word by a dot product (no scaling), a softmax over the *words* gives its weights, and the
weighted sum of projected words is the pixel's word context. Output: ``[h ; context]``
(2 * channels) and the attention map (B, T, H, W).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, FusionOutput, masked_softmax
from t2i_stages.plugins.common.layers import conv1x1

from .params import WordAttentionParams


def expand_mask(mask: torch.Tensor, n: int, reference_layout: bool) -> torch.Tensor:
    """(B, T) mask -> (B, N, T) for N query positions, optionally with the reference's layout."""
    b, t = mask.shape
    if reference_layout:
        # The reference fills row b*N + q of the (B*N, T) score matrix with mask[(b*N + q) % B].
        return mask.repeat(n, 1).reshape(b, n, t)
    return mask.unsqueeze(1).expand(b, n, t)


class WordAttention(nn.Module):
    """Fusion ``(h, Condition(words, mask)) -> ([h ; word context], attention)``."""

    requires = "sequence"

    def __init__(self, channels: int, text_dim: int, reference_mask_layout: bool = False):
        super().__init__()
        self.channels = channels
        self.out_channels = 2 * channels
        self.reference_mask_layout = reference_mask_layout
        self.project = conv1x1(text_dim, channels)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        b, c, height, width = h.shape
        words = self.project(cond.words.unsqueeze(3)).squeeze(3)  # (B, C, T)
        query = h.reshape(b, c, height * width).transpose(1, 2)  # (B, N, C)
        scores = torch.bmm(query, words)  # (B, N, T)
        mask = None
        if cond.mask is not None:
            mask = expand_mask(cond.mask, height * width, self.reference_mask_layout)
        attn = masked_softmax(scores, mask, dim=2)  # over words
        context = torch.bmm(words, attn.transpose(1, 2)).reshape(b, c, height, width)
        attention = attn.transpose(1, 2).reshape(b, -1, height, width)
        return FusionOutput(torch.cat([h, context], dim=1), attention)


def build_word_attention(
    params: WordAttentionParams,
    channels: int | None = None,
    text_dim: int | None = None,
    **ctx: Any,
) -> WordAttention:
    if channels is None or text_dim is None:
        raise ValueError("fusion 'word_attention' needs channels and text_dim from its stage")
    return WordAttention(channels, text_dim, params.reference_mask_layout)
