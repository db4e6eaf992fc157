"""DF-GAN's deep-fusion block (reference §7): Affine -> LeakyReLU -> Affine -> LeakyReLU.

Each Affine predicts a per-channel scale and shift from the condition vector y with two MLPs
(Linear(y -> C) -> ReLU -> Linear(C -> C)) and returns ``gamma * x + beta``. The last Linear of
each MLP starts at zero weights with bias 1 (scale) or 0 (shift), so the block starts as the
identity followed by LeakyReLUs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, FusionOutput

from .params import AffineFusionParams


class Affine(nn.Module):
    """Text-conditioned channel-wise affine transform."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.gamma = nn.Sequential(
            nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.beta = nn.Sequential(
            nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.reset_last()

    @torch.no_grad()
    def reset_last(self) -> None:
        """The reference init of the last layers: identity transform at the start."""
        nn.init.zeros_(self.gamma[2].weight)
        nn.init.ones_(self.gamma[2].bias)
        nn.init.zeros_(self.beta[2].weight)
        nn.init.zeros_(self.beta[2].bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gamma(y)[:, :, None, None] * x + self.beta(y)[:, :, None, None]


class AffineFusion(nn.Module):
    """Fusion ``(h, Condition(vector=y)) -> (features, None)``, same channel count out as in."""

    requires = "vector"

    def __init__(self, channels: int, cond_dim: int, negative_slope: float = 0.2):
        super().__init__()
        self.channels = channels
        self.out_channels = channels
        self.affine0 = Affine(cond_dim, channels)
        self.affine1 = Affine(cond_dim, channels)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        y = cond.vector
        h = self.act(self.affine0(h, y))
        h = self.act(self.affine1(h, y))
        return FusionOutput(h, None)


def build_affine(
    params: AffineFusionParams,
    channels: int | None = None,
    text_dim: int | None = None,
    **ctx: Any,
) -> AffineFusion:
    if channels is None or text_dim is None:
        raise ValueError(
            "fusion 'affine' needs channels and text_dim (condition size) from its caller"
        )
    return AffineFusion(channels, text_dim, params.negative_slope)
