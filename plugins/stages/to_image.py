"""The to-image head (GET_IMAGE_G): conv3x3 (no bias) to RGB, then tanh into [-1, 1]."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugins.common.layers import conv3x3


class ToImage(nn.Module):
    """features (B, C, H, W) -> image (B, 3, H, W) in [-1, 1]; ``C * 27`` parameters."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.conv = conv3x3(in_channels, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(h))


def build_to_image(params: Any, in_channels: int | None = None, **ctx: Any) -> ToImage:
    if in_channels is None:
        raise ValueError("stage 'to_image' needs in_channels from its generator")
    return ToImage(in_channels)
