"""AttnGAN's word attention (reference §2.1, NEXT_STAGE_G steps 1-3).

Words (B, nef, T) are projected by a 1x1 conv (no bias) to the image channels; each pixel scores
every word by a dot product (no scaling), a softmax over the *words* gives its weights, and the
weighted sum of projected words is the pixel's word context. Output: ``[h ; context]``
(2 * channels) and the attention map (B, T, H, W).

With ``sdpa`` a training-mode forward computes the context with torch's fused
``scaled_dot_product_attention`` (scale 1, the padding mask as its boolean mask): the same
function to float rounding, without materialising the (B, H*W, T) weights, and so without the
attention map (None). An eval-mode forward (sample grids, evaluation, export, summaries: where
the maps are shown) always takes the explicit path and returns the map.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from t2i_stages.plugin import Condition, FusionOutput, masked_softmax
from t2i_stages.plugins.common.layers import conv1x1, follow_memory_format

from .params import WordAttentionParams


def expand_mask(mask: torch.Tensor, n: int, reference_layout: bool) -> torch.Tensor:
    """(B, T) mask -> (B, N, T) for N query positions, optionally with the reference's layout."""
    b, t = mask.shape
    if reference_layout:
        # The reference fills row b*N + q of the (B*N, T) score matrix with mask[(b*N + q) % B].
        return mask.repeat(n, 1).reshape(b, n, t)
    return mask.unsqueeze(1).expand(b, n, t)


def fused_read(
    h: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None,
    reference_layout: bool,
) -> torch.Tensor:
    """``sum_t softmax_t(h_n . k_t) v_t`` for every pixel n, by ``scaled_dot_product_attention``.

    h (B, C, H, W); keys, values (B, C, T); mask (B, T) bool (True = word) or None. Returns the
    read (B, C, H, W), channels-last when ``h`` is. A pixel with no real word reads zeros, as
    ``masked_softmax`` gives it (torch's kernels return 0 for a fully masked row).
    """
    b, c, height, width = h.shape
    n = height * width
    q = h.reshape(b, c, n).transpose(1, 2).unsqueeze(1)  # (B, 1, N, C)
    k = keys.transpose(1, 2).unsqueeze(1)  # (B, 1, T, C)
    v = values.transpose(1, 2).unsqueeze(1)
    dev = h.device.type
    if torch.is_autocast_enabled(dev):  # as autocast runs the bmm of the explicit path
        dtype = torch.get_autocast_dtype(dev)
    else:
        dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    attn_mask = None
    if mask is not None:
        m = expand_mask(mask, n, True) if reference_layout else mask[:, None, :]
        attn_mask = m.to(torch.bool).unsqueeze(1)  # (B, 1, N or 1, T)
    out = F.scaled_dot_product_attention(
        q.to(dtype), k.to(dtype), v.to(dtype), attn_mask=attn_mask, scale=1.0
    )
    return out.squeeze(1).transpose(1, 2).reshape(b, c, height, width)


def explicit_read(
    h: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None,
    reference_layout: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fused_read`` written out, with its weights: the read (B, C, H, W), channels-last when
    ``h`` is, and the attention map (B, T, H, W) over the words (``masked_softmax``)."""
    b, c, height, width = h.shape
    query = h.reshape(b, c, height * width).transpose(1, 2)  # (B, N, C)
    scores = torch.bmm(query, keys)  # (B, N, T)
    if mask is not None:
        mask = expand_mask(mask, height * width, reference_layout)
    attn = masked_softmax(scores, mask, dim=2)  # over words
    read = torch.bmm(values, attn.transpose(1, 2)).reshape(b, c, height, width)
    return follow_memory_format(read, h), attn.transpose(1, 2).reshape(b, -1, height, width)


class WordAttention(nn.Module):
    """Fusion ``(h, Condition(words, mask)) -> ([h ; word context], attention)``."""

    requires = "sequence"

    def __init__(
        self,
        channels: int,
        text_dim: int,
        reference_mask_layout: bool = False,
        sdpa: bool = False,
    ):
        super().__init__()
        self.channels = channels
        self.out_channels = 2 * channels
        self.reference_mask_layout = reference_mask_layout
        self.sdpa = sdpa
        self.project = conv1x1(text_dim, channels)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        words = self.project(cond.words.unsqueeze(3)).squeeze(3)  # (B, C, T)
        if self.sdpa and self.training:
            context = fused_read(h, words, words, cond.mask, self.reference_mask_layout)
            return FusionOutput(torch.cat([h, context], dim=1), None)
        context, attention = explicit_read(h, words, words, cond.mask, self.reference_mask_layout)
        return FusionOutput(torch.cat([h, context], dim=1), attention)


def build_word_attention(
    params: WordAttentionParams,
    channels: int | None = None,
    text_dim: int | None = None,
    **ctx: Any,
) -> WordAttention:
    if channels is None or text_dim is None:
        raise ValueError("fusion 'word_attention' needs channels and text_dim from its stage")
    return WordAttention(channels, text_dim, params.reference_mask_layout, params.sdpa)
