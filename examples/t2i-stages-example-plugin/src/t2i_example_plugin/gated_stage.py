"""A gated refinement stage: fusion, residual refinement and upsampling, plus a learned skip.

``out = up(residual(fusion(h))) + skip(upsample(h))``. The skip (nearest x2 then a 1x1
conv) carries the previous stage's features straight to the next resolution, so the stage only
has to learn a text-driven correction. The conditioning level and the fusion block are slots:
a recipe (or an ablation variant) can swap either without touching this code.

Stage contract (docs/writing-a-plugin.md): built with ``channels`` (gf), ``text_dim``,
``in_channels`` and ``in_resolution``; ``forward(h, text, z, eps) -> StageOutput``; exposes
``out_channels``, ``out_resolution`` and ``eps_dim``. Its layers are plain torch (the residual
block and the upsampling of the reference generators, written out here).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    StageOutput,
    TextFeatures,
    check_fit,
)

from .params import GatedRefineParams


class Residual(nn.Module):
    """``x + BN(conv(GLU(BN(conv(x)))))``: the reference generators' residual block."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels * 2),
            nn.GLU(dim=1),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Nearest x2 upsample -> 3x3 conv -> BatchNorm -> GLU: doubles the resolution."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels * 2, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels * 2),
        nn.GLU(dim=1),
    )


class GatedRefine(nn.Module):
    """``(h, text, z, eps) -> StageOutput(features (B, C, 2H, 2W), attention (B, T, H, W))``."""

    def __init__(
        self,
        conditioning: nn.Module,
        fusion: nn.Module,
        in_channels: int,
        out_channels: int,
        residual_blocks: int,
        in_resolution: int | None,
        skip: bool,
    ):
        super().__init__()
        self.conditioning, self.fusion = conditioning, fusion
        width = fusion.out_channels
        self.residual = nn.Sequential(*[Residual(width) for _ in range(residual_blocks)])
        self.up = up_block(width, out_channels)
        self.skip = (
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
            )
            if skip
            else None
        )
        self.out_channels = out_channels
        self.out_resolution = None if in_resolution is None else 2 * in_resolution
        self.eps_dim = getattr(conditioning, "eps_dim", 0)

    def forward(
        self,
        h: torch.Tensor | None,
        text: TextFeatures,
        z: torch.Tensor,
        eps: torch.Tensor | None = None,
    ) -> StageOutput:
        cond = self.conditioning(text, eps)
        fused, attention = self.fusion(h, cond)
        out = self.up(self.residual(fused))
        if self.skip is not None:
            out = out + self.skip(h)
        return StageOutput(out, attention, cond.mu, cond.logvar)


def build_gated_refine(
    params: GatedRefineParams,
    registry: Any = None,
    channels: int | None = None,
    text_dim: int | None = None,
    in_channels: int | None = None,
    in_resolution: int | None = None,
    **ctx: Any,
) -> GatedRefine:
    if in_channels is None or text_dim is None:
        raise ValueError("stage 'gated_refine' refines a previous stage; it cannot be the first")
    cond = registry.build("conditioning", params.conditioning, text_dim=text_dim)
    fusion = registry.build("fusion", params.fusion, channels=in_channels, text_dim=cond.dim)
    check_fit(cond, fusion, params.conditioning.type, params.fusion.type, "stage 'gated_refine'")
    return GatedRefine(
        cond,
        fusion,
        in_channels,
        channels or in_channels,
        params.residual_blocks,
        in_resolution,
        params.skip,
    )
