"""The initial stage (INIT_STAGE_G, reference §1): condition and noise to the first features.

``[c ; z]`` (condition first, as the reference) -> Linear (no bias) -> BatchNorm1d -> GLU ->
reshape to (B, ngf0, s, s) -> ``upsamples`` upBlocks halving the channels each time, ending at
``channels`` (gf) and resolution ``s * 2**upsamples`` (4 * 16 = 64 in the papers).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    PluginError,
    StageOutput,
    TextFeatures,
)
from t2i_stages.plugins.common.layers import GLU, UpBlock

from .params import InitialStageParams


class InitialStage(nn.Module):
    """``(None, text, z, eps) -> StageOutput(features (B, gf, r, r), None, mu, logvar)``."""

    def __init__(
        self,
        conditioning: nn.Module,
        channels: int,
        z_dim: int,
        multiplier: int = 16,
        base_size: int = 4,
        upsamples: int = 4,
    ):
        super().__init__()
        if getattr(conditioning, "provides", "vector") == "sequence":
            raise ValueError("the initial stage needs a vector conditioning level or none")
        if channels * multiplier % (2**upsamples):
            raise ValueError(
                f"multiplier*gf={channels * multiplier} cannot halve {upsamples} times"
            )
        self.conditioning = conditioning
        self.z_dim = z_dim
        self.eps_dim = getattr(conditioning, "eps_dim", 0)
        self.ngf0 = channels * multiplier
        self.base_size = base_size
        in_dim = getattr(conditioning, "dim", 0) + z_dim
        self.fc = nn.Sequential(
            nn.Linear(in_dim, self.ngf0 * base_size * base_size * 2, bias=False),
            nn.BatchNorm1d(self.ngf0 * base_size * base_size * 2),
            GLU(),
        )
        ups, ch = [], self.ngf0
        for _ in range(upsamples):
            ups.append(UpBlock(ch, ch // 2))
            ch //= 2
        self.upsample = nn.Sequential(*ups)
        self.out_channels = ch
        self.out_resolution = base_size * 2**upsamples

    def forward(
        self,
        h: torch.Tensor | None,
        text: TextFeatures,
        z: torch.Tensor,
        eps: torch.Tensor | None = None,
    ) -> StageOutput:
        cond = self.conditioning(text, eps)
        x = z if cond.vector is None else torch.cat([cond.vector, z], dim=1)
        x = self.fc(x).reshape(z.shape[0], self.ngf0, self.base_size, self.base_size)
        return StageOutput(self.upsample(x), None, cond.mu, cond.logvar)


def build_initial(
    params: InitialStageParams,
    registry: Any = None,
    channels: int | None = None,
    text_dim: int | None = None,
    z_dim: int | None = None,
    **ctx: Any,
) -> InitialStage:
    if channels is None or z_dim is None or text_dim is None:
        raise ValueError("stage 'initial' needs channels, text_dim and z_dim from its generator")
    cond = registry.build("conditioning", params.conditioning, text_dim=text_dim)
    if getattr(cond, "provides", None) == "sequence":
        raise PluginError(
            f"stage 'initial': conditioning '{params.conditioning.type}' gives a word sequence; "
            "the initial stage needs a vector (ca, sentence, mean_words) or none"
        )
    multiplier = params.multiplier or 2**params.upsamples
    return InitialStage(cond, channels, z_dim, multiplier, params.base_size, params.upsamples)
