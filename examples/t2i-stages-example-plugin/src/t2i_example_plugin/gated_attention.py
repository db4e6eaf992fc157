"""A gated cross-attention fusion block.

Each pixel attends over the caption's real words with multi-head scaled dot-product attention
(queries from the image features, keys and values from the word features, padded words masked
out); the resulting word context is added to the image features through a gate computed from
both, ``h + sigmoid(W_g [h ; context] + b) * W_o context``. Unlike AttnGAN's word attention it
keeps the channel width (no concatenation), so the stage's residual blocks stay at ``channels``.

Fusion contract (docs/writing-a-plugin.md): built with ``channels`` and ``text_dim``;
``forward(h, cond) -> FusionOutput(features, attention)``; ``requires`` and ``out_channels``.
The block initialises its own gate bias, which a built-in generator's ``init`` leaves alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, FusionOutput, masked_softmax

from .params import GatedCrossAttentionParams


class GatedCrossAttention(nn.Module):
    """``(h (B, C, H, W), Condition(words (B, D, T), mask)) -> (h + gate * context, attention)``."""

    requires = "sequence"

    def __init__(self, channels: int, text_dim: int, heads: int, gate_bias: float, scale: bool):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads ({heads}) must divide the image channels ({channels})")
        self.channels, self.heads = channels, heads
        self.out_channels = channels
        self.scale = (channels // heads) ** -0.5 if scale else 1.0
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key = nn.Linear(text_dim, channels, bias=False)
        self.value = nn.Linear(text_dim, channels, bias=False)
        self.out = nn.Conv2d(channels, channels, 1, bias=False)
        self.gate = nn.Conv2d(2 * channels, channels, 1)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        b, c, height, width = h.shape
        n, k = height * width, self.heads
        words = cond.words.transpose(1, 2)  # (B, T, D)
        t = words.shape[1]
        q = self.query(h).reshape(b, k, c // k, n).transpose(2, 3)  # (B, k, N, c/k)
        key = self.key(words).reshape(b, t, k, c // k).permute(0, 2, 3, 1)  # (B, k, c/k, T)
        val = self.value(words).reshape(b, t, k, c // k).transpose(1, 2)  # (B, k, T, c/k)
        scores = torch.matmul(q, key) * self.scale  # (B, k, N, T)
        mask = None
        if cond.mask is not None:
            mask = cond.mask[:, None, None, :].expand(b, k, n, t)
        attn = masked_softmax(scores, mask, dim=3)  # over words
        context = torch.matmul(attn, val)  # (B, k, N, c/k)
        context = context.transpose(2, 3).reshape(b, c, height, width)
        context = self.out(context)
        gate = torch.sigmoid(self.gate(torch.cat([h, context], dim=1)))
        attention = attn.mean(dim=1).transpose(1, 2).reshape(b, t, height, width)
        return FusionOutput(h + gate * context, attention)


def build_gated_cross_attention(
    params: GatedCrossAttentionParams,
    channels: int | None = None,
    text_dim: int | None = None,
    **ctx: Any,
) -> GatedCrossAttention:
    if channels is None or text_dim is None:
        raise ValueError(
            "fusion 'gated_cross_attention' needs channels and text_dim from its stage"
        )
    return GatedCrossAttention(channels, text_dim, params.heads, params.gate_bias, params.scale)
