"""DM-GAN's dynamic memory (reference §3.2), also GR-GAN's fusion at stages 2 and 3.

With image features h (B, C, H, W) and words w (B, nef, T):
1. global image feature r = mean of h over H, W (detached in the reference);
2. memory-writing gate g_t = sigmoid(A w_t + B r) (no mask on the gate);
3. memory m_t = g_t * ReLU(M_w w_t) + (1 - g_t) * ReLU(M_r r), (B, 2C, T);
4. key K = ReLU(conv1d(m)), value V = ReLU(conv1d(m)), each (B, C, T);
5. key addressing: softmax over words of h_n . K_t (padding masked, no scaling);
6. value reading o_n = sum_t a_nt V_t;
7. response gate g_r = sigmoid(conv1x1([h ; o])), h' = (1 - g_r) h + g_r o;
8. output [h' ; h'] (the reference duplicates h') and the addressing weights (B, T, H, W).

``sdpa``: steps 5-6 by torch's fused attention in training-mode forwards, without the addressing
weights (None), as in ``word_attention``; eval-mode forwards return them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, FusionOutput

from .params import DynamicMemoryParams
from .word_attention import explicit_read, fused_read


class DynamicMemory(nn.Module):
    """Fusion ``(h, Condition(words, mask)) -> (2C features, addressing weights)``."""

    requires = "sequence"

    def __init__(
        self,
        channels: int,
        text_dim: int,
        detach_global: bool = True,
        duplicate_response: bool = True,
        reference_mask_layout: bool = False,
        sdpa: bool = False,
    ):
        super().__init__()
        c = channels
        self.sdpa = sdpa
        self.channels = c
        self.out_channels = 2 * c
        self.detach_global = detach_global
        self.duplicate_response = duplicate_response
        self.reference_mask_layout = reference_mask_layout
        self.gate_words = nn.Linear(text_dim, 1, bias=False)  # A
        self.gate_image = nn.Linear(c, 1, bias=False)  # B
        self.write_words = nn.Sequential(nn.Conv1d(text_dim, 2 * c, 1), nn.ReLU())  # M_w
        self.write_image = nn.Sequential(nn.Conv1d(c, 2 * c, 1), nn.ReLU())  # M_r
        self.key = nn.Sequential(nn.Conv1d(2 * c, c, 1), nn.ReLU())
        self.value = nn.Sequential(nn.Conv1d(2 * c, c, 1), nn.ReLU())
        self.response_gate = nn.Conv2d(2 * c, 1, kernel_size=1)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        words = cond.words  # (B, nef, T)
        r = h.mean(dim=(2, 3))  # (B, C): AvgPool over the whole map
        if self.detach_global:
            r = r.detach()
        gate = torch.sigmoid(
            self.gate_words(words.transpose(1, 2)).transpose(1, 2)  # (B, 1, T)
            + self.gate_image(r).unsqueeze(2)  # (B, 1, 1)
        )
        from_image = self.write_image(r.unsqueeze(2))  # (B, 2C, 1), same for every slot
        memory = self.write_words(words) * gate + from_image * (1 - gate)  # (B, 2C, T)
        key, value = self.key(memory), self.value(memory)  # (B, C, T)
        if self.sdpa and self.training:
            read, attention = fused_read(h, key, value, cond.mask, self.reference_mask_layout), None
        else:  # o
            read, attention = explicit_read(h, key, value, cond.mask, self.reference_mask_layout)
        g = torch.sigmoid(self.response_gate(torch.cat([h, read], dim=1)))
        response = (1 - g) * h + g * read
        other = response if self.duplicate_response else read
        return FusionOutput(torch.cat([response, other], dim=1), attention)


def build_dynamic_memory(
    params: DynamicMemoryParams,
    channels: int | None = None,
    text_dim: int | None = None,
    **ctx: Any,
) -> DynamicMemory:
    if channels is None or text_dim is None:
        raise ValueError("fusion 'dynamic_memory' needs channels and text_dim from its stage")
    return DynamicMemory(
        channels,
        text_dim,
        params.detach_global,
        params.duplicate_response,
        params.reference_mask_layout,
        params.sdpa,
    )
