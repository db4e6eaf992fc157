"""DF-GAN's discriminator with its conditional head NetC (reference §7).

conv3x3(3 -> nf), then D_Blocks over the channels nf*min(2**i, 8) (32 -> 64 -> 128 -> 256 ->
256 -> 256 -> 256 at nf 32, 256 px): residual = conv4x4 s2 (no bias) -> LReLU -> conv3x3 (no
bias) -> LReLU scaled by a learnable gamma (starts at 0); shortcut = 1x1 conv when channels
change, then 2x2 average pool. Features (B, 8nf, 4, 4). NetC: tile the sentence to 4x4,
concatenate, conv3x3 (-> 2nf, no bias) -> LReLU -> conv4x4 (-> 1, no bias).

API as the stage-wise Ds: ``f = D(images)``; ``D.uncond_logits(f)`` is None (DF-GAN has no
unconditional head); ``c = D.condition(text)``; ``D.cond_logits(f, c)`` gives (B,) raw scores
for the hinge loss. MA-GP differentiates ``cond_logits`` w.r.t. the images and ``c``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from t2i_stages.plugin import (
    DiscriminatorBase,
    PluginError,
)
from t2i_stages.plugins.common.layers import follow_memory_format

from .params import DFGANDiscriminatorParams
from .resolution import resolve_resolution


def discriminator_channels(nf: int, resolution: int) -> list[int]:
    """nf*min(2**i, 8) for i < log2(r) - 1: the D_Blocks go from each entry to the next."""
    n = int(math.log2(resolution)) - 1
    return [nf * min(2**i, 8) for i in range(n)]


class DBlock(nn.Module):
    """DF-GAN discriminator block: gamma * residual + avgpool(shortcut), half resolution."""

    def __init__(self, fin: int, fout: int, build_unused_shortcut: bool = True):
        super().__init__()
        self.learned_shortcut = fin != fout
        self.residual = nn.Sequential(
            nn.Conv2d(fin, fout, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(fout, fout, 3, 1, 1, bias=False),
            nn.LeakyReLU(0.2),
        )
        self.shortcut = (
            nn.Conv2d(fin, fout, 1, 1, 0)
            if self.learned_shortcut or build_unused_shortcut
            else None
        )
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        if self.learned_shortcut:
            x = self.shortcut(x)
        return F.avg_pool2d(x, 2) + self.gamma * res


class DFGANDiscriminator(DiscriminatorBase):
    """Image encoder + NetC; see the module docstring."""

    def __init__(
        self,
        resolution: int,
        nf: int,
        conditioning: nn.Module,
        cond_head: bool,
        unused_shortcuts: bool,
    ):
        super().__init__()
        self.resolution = resolution
        self.conditioning = conditioning
        chans = discriminator_channels(nf, resolution)
        self.conv_img = nn.Conv2d(3, nf, 3, 1, 1)
        self.blocks = nn.Sequential(
            *[DBlock(a, b, unused_shortcuts) for a, b in zip(chans[:-1], chans[1:], strict=True)]
        )
        self.feature_channels = chans[-1]
        self.cond_dim = getattr(conditioning, "dim", 0)
        self.netc = None
        if cond_head:
            self.netc = nn.Sequential(
                nn.Conv2d(chans[-1] + self.cond_dim, nf * 2, 3, 1, 1, bias=False),
                nn.LeakyReLU(0.2),
                nn.Conv2d(nf * 2, 1, 4, 1, 0, bias=False),
            )

    @property
    def has_cond(self) -> bool:
        return self.netc is not None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.conv_img(images))

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        return None

    def cond_logits(
        self, features: torch.Tensor, condition: torch.Tensor | None
    ) -> torch.Tensor | None:
        if self.netc is None or condition is None:
            return None
        b, _, h, w = features.shape
        tiled = follow_memory_format(condition.reshape(b, -1, 1, 1).expand(-1, -1, h, w), features)
        return self.netc(torch.cat([features, tiled], dim=1)).reshape(-1)


def build_dfgan_d(
    params: DFGANDiscriminatorParams, registry: Any = None, **ctx: Any
) -> DFGANDiscriminator:
    res = resolve_resolution("dfgan", params.resolution, ctx)
    if res < 16:
        raise ValueError("discriminator 'dfgan' needs a resolution of at least 16")
    cond = registry.build("conditioning", params.conditioning, text_dim=params.text_dim)
    if params.cond_head and getattr(cond, "provides", None) != "vector":
        raise PluginError(
            f"discriminator 'dfgan': NetC needs a vector condition, conditioning "
            f"'{params.conditioning.type}' gives {getattr(cond, 'provides', '?')}"
        )
    if getattr(cond, "eps_dim", 0):
        raise PluginError(
            "discriminator 'dfgan': its conditioning must not need noise (use sentence)"
        )
    return DFGANDiscriminator(res, params.nf, cond, params.cond_head, params.unused_shortcuts)
