"""A third-party model plugin used by the tests: a new fusion block and a new refinement stage.

It lives outside the t2i_stages package and registers through the ``t2i_stages`` entry-point
group of its own distribution (the dist-info folder beside it), exactly as a pip-installed
package would; nothing in the core names it.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from t2i_stages.plugin import (
    ComponentSpec,
    Condition,
    ConditioningSlot,
    FusionOutput,
    FusionSlot,
    Params,
    StageOutput,
    hookimpl,
)


class GatedSumParams(Params):
    """Adds a gated projection of the mean real word to every pixel."""

    gate_bias: float = Field(0.0, description="Initial bias of the gate.")


class GatedSum(nn.Module):
    requires = "sequence"

    def __init__(self, channels: int, text_dim: int, gate_bias: float):
        super().__init__()
        self.out_channels = channels
        self.project = nn.Linear(text_dim, channels)
        self.gate = nn.Conv2d(channels, channels, 1)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, h: torch.Tensor, cond: Condition) -> FusionOutput:
        m = cond.mask.to(h.dtype).unsqueeze(1)
        mean = (cond.words * m).sum(2) / m.sum(2).clamp(min=1)
        text = self.project(mean)[:, :, None, None]
        return FusionOutput(h + torch.sigmoid(self.gate(h)) * text, None)


class RefineLiteParams(Params):
    """Fusion, one 3x3 conv, upsampling: a light refinement stage."""

    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="words"), description="Text it sees."
    )
    fusion: FusionSlot = Field(
        default_factory=lambda: FusionSlot(type="gated_sum"), description="Its fusion block."
    )


class RefineLite(nn.Module):
    def __init__(self, cond: nn.Module, fusion: nn.Module, channels: int, in_resolution: int):
        super().__init__()
        self.conditioning, self.fusion = cond, fusion
        width = fusion.out_channels
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.out_channels, self.out_resolution, self.eps_dim = channels, 2 * in_resolution, 0

    def forward(self, h, text, z, eps=None) -> StageOutput:
        fused, att = self.fusion(h, self.conditioning(text))
        return StageOutput(self.up(torch.relu(self.conv(fused))), att)


def build_gated_sum(params: GatedSumParams, channels: int, text_dim: int, **ctx: Any) -> GatedSum:
    return GatedSum(channels, text_dim, params.gate_bias)


def build_refine_lite(params: RefineLiteParams, registry: Any, **ctx: Any) -> RefineLite:
    cond = registry.build("conditioning", params.conditioning, text_dim=ctx["text_dim"])
    fusion = registry.build("fusion", params.fusion, channels=ctx["in_channels"], text_dim=cond.dim)
    return RefineLite(cond, fusion, ctx["channels"], ctx["in_resolution"])


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {"gated_sum": ComponentSpec(build_gated_sum, GatedSumParams, "gated mean-word sum")}


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {"refine_lite": ComponentSpec(build_refine_lite, RefineLiteParams, "light refinement")}
