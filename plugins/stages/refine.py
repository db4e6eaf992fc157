"""The refinement stage (NEXT_STAGE_G, reference §2.1 and §3.2): fusion, residual blocks, upsampling.

Takes the previous stage's features h (B, C, H, W), fuses text into them with its fusion block
(fed by its own conditioning level), runs ``residual_blocks`` ResBlocks at the fused width and
one upBlock back to ``channels`` at 2H x 2W. Returns the fusion's attention map at (H, W).
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
from t2i_stages.plugins.common.layers import ResBlock, UpBlock

from .params import RefineStageParams


class RefineStage(nn.Module):
    """``(h, text, z, eps) -> StageOutput(features (B, C, 2H, 2W), attention (B, T, H, W))``."""

    def __init__(
        self,
        conditioning: nn.Module,
        fusion: nn.Module,
        out_channels: int,
        residual_blocks: int,
        in_resolution: int | None,
    ):
        super().__init__()
        self.conditioning = conditioning
        self.fusion = fusion
        width = fusion.out_channels
        self.residual = nn.Sequential(*[ResBlock(width) for _ in range(residual_blocks)])
        self.upsample = UpBlock(width, out_channels)
        self.out_channels = out_channels
        self.eps_dim = getattr(conditioning, "eps_dim", 0)
        self.out_resolution = None if in_resolution is None else 2 * in_resolution

    def forward(
        self,
        h: torch.Tensor | None,
        text: TextFeatures,
        z: torch.Tensor,
        eps: torch.Tensor | None = None,
    ) -> StageOutput:
        cond = self.conditioning(text, eps)
        fused, attention = self.fusion(h, cond)
        out = self.upsample(self.residual(fused))
        return StageOutput(out, attention, cond.mu, cond.logvar)


def build_refine(
    params: RefineStageParams,
    registry: Any = None,
    channels: int | None = None,
    text_dim: int | None = None,
    in_channels: int | None = None,
    in_resolution: int | None = None,
    **ctx: Any,
) -> RefineStage:
    if in_channels is None or text_dim is None:
        raise ValueError(
            "stage 'refine' needs in_channels and text_dim; it cannot be the first stage"
        )
    cond = registry.build("conditioning", params.conditioning, text_dim=text_dim)
    fusion = registry.build(
        "fusion", params.fusion, channels=in_channels, text_dim=getattr(cond, "dim", 0)
    )
    check_fit(cond, fusion, params.conditioning.type, params.fusion.type, "stage 'refine'")
    out_ch = params.channels or channels or in_channels
    return RefineStage(cond, fusion, out_ch, params.residual_blocks, in_resolution)
