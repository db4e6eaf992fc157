"""DF-GAN's single-stage generator (reference §7).

z (B, z_dim) -> Linear -> (B, 8nf, 4, 4) -> G_Blocks, each: nearest x2 upsample, then
``shortcut(x) + residual(x, y)`` with residual = fusion -> conv3x3 -> fusion -> conv3x3 and a
1x1-conv shortcut when channels change; the condition is y = [z ; sentence]. Then LeakyReLU ->
conv3x3 -> tanh. Channels at nf 32 and 256 px: 256, 256, 256, 256, 128, 64, 32.

Same forward contract as the stage-wise generator: ``G(z, eps, text) -> GeneratorOutput`` with a
one-element images list, no attention, no CA (``G.eps_dim == 0``; ``eps`` is ignored).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from t2i_stages.plugin import (
    Condition,
    GeneratorOutput,
    PluginError,
    TextFeatures,
)
from t2i_stages.plugins.common.layers import follow_memory_format

from .params import DFGANGeneratorParams


def generator_channels(nf: int, resolution: int) -> list[int]:
    """DF-GAN's channel list, high -> low width: nf*min(2**i, 8) reversed, log2(r) entries."""
    n = int(math.log2(resolution)) - 1
    return [nf * min(2**i, 8) for i in range(n)][::-1]


class GBlock(nn.Module):
    """One DF-GAN generator block (upsampling is done by the caller)."""

    def __init__(self, in_ch: int, out_ch: int, fuse1: nn.Module, fuse2: nn.Module):
        super().__init__()
        self.fuse1 = fuse1
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.fuse2 = fuse2
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, 1, 0) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, cond: Any) -> torch.Tensor:
        h = self.conv1(self.fuse1(x, cond).features)
        h = self.conv2(self.fuse2(h, cond).features)
        return (x if self.shortcut is None else self.shortcut(x)) + h


class DFGANGenerator(nn.Module):
    """``G(z, eps, text) -> GeneratorOutput([image], [], None, None)``."""

    def __init__(
        self,
        conditioning: nn.Module,
        blocks: list[GBlock],
        chans: list[int],
        z_dim: int,
        text_dim: int,
        resolution: int,
    ):
        super().__init__()
        self.conditioning = conditioning
        self.z_dim = z_dim
        self.text_dim = text_dim
        self.eps_dim = 0
        self.resolutions = [resolution]
        self.top = chans[0]
        self.fc = nn.Linear(z_dim, chans[0] * 4 * 4)
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(chans[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(
        self, z: torch.Tensor, eps: torch.Tensor | None, text: TextFeatures
    ) -> GeneratorOutput:
        c = self.conditioning(text).vector
        y = z if c is None else torch.cat([z, c], dim=1)
        cond = Condition(vector=y)
        out = self.fc(z).reshape(z.shape[0], self.top, 4, 4)
        out = follow_memory_format(out, self.to_rgb[1].weight)  # train.channels_last
        for block in self.blocks:
            out = block(F.interpolate(out, scale_factor=2.0, mode="nearest"), cond)
        return GeneratorOutput([self.to_rgb(out)], [], None, None)


def build_dfgan(params: DFGANGeneratorParams, registry: Any = None, **ctx: Any) -> DFGANGenerator:
    cond = registry.build("conditioning", params.conditioning, text_dim=params.text_dim)
    if getattr(cond, "provides", "vector") == "sequence":
        raise PluginError(
            f"generator 'dfgan': conditioning '{params.conditioning.type}' gives a sequence; "
            "DF-GAN needs a vector (sentence, mean_words, ca) or none"
        )
    y_dim = params.z_dim + getattr(cond, "dim", 0)
    chans = generator_channels(params.nf, params.resolution)
    blocks = []
    for in_ch, out_ch in zip(chans[:-1], chans[1:], strict=True):
        f1 = registry.build("fusion", params.fusion, channels=in_ch, text_dim=y_dim)
        f2 = registry.build("fusion", params.fusion, channels=out_ch, text_dim=y_dim)
        for f in (f1, f2):
            if getattr(f, "requires", "vector") != "vector":
                raise PluginError(
                    f"generator 'dfgan': fusion '{params.fusion.type}' needs a word sequence; "
                    "DF-GAN blocks give it a condition vector"
                )
        for f, ch in ((f1, in_ch), (f2, out_ch)):
            if getattr(f, "out_channels", ch) != ch:
                raise PluginError(
                    f"generator 'dfgan': fusion '{params.fusion.type}' changes the channel count "
                    f"({ch} -> {f.out_channels}); DF-GAN blocks need it to keep them"
                )
        blocks.append(GBlock(in_ch, out_ch, f1, f2))
    return DFGANGenerator(cond, blocks, chans, params.z_dim, params.text_dim, params.resolution)
