"""The stage-wise generator (AttnGAN, DM-GAN, GR-GAN): any number of stages from the recipe.

Forward contract (deterministic, ONNX-exportable: no random draws, masks are inputs)::

    out = G(z, eps, text)          # z (B, z_dim); eps (B, G.eps_dim) or None; text: TextFeatures
    out.images     # one (B, 3, r_i, r_i) per stage, r_i = G.resolutions[i], low -> high
    out.attention  # one entry per stage after the first: (B, T, h, w) or None
    out.mu, out.logvar  # CA statistics (B, c_dim) or None; with several CA levels, concatenated

``eps`` is split in stage order among the stages whose conditioning level consumes one (CA);
``eps=None`` uses the CA mean (c = mu). ``G.z_dim``, ``G.eps_dim``, ``G.text_dim`` and
``G.resolutions`` tell the training engine what to sample and which discriminators to build.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    GeneratorOutput,
    PluginError,
    TextFeatures,
)
from t2i_stages.plugins.common.init import apply_init

from .params import StagewiseGeneratorParams


class StagewiseGenerator(nn.Module):
    """Stages plus one image head per stage; see the module docstring for the contract."""

    def __init__(self, stages: list[nn.Module], heads: list[nn.Module], z_dim: int, text_dim: int):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        self.z_dim = z_dim
        self.text_dim = text_dim
        self.eps_dims = [int(getattr(s, "eps_dim", 0)) for s in stages]
        self.eps_dim = sum(self.eps_dims)
        self.resolutions = [int(s.out_resolution) for s in stages]

    def forward(
        self, z: torch.Tensor, eps: torch.Tensor | None, text: TextFeatures
    ) -> GeneratorOutput:
        if eps is not None and self.eps_dim and eps.shape[1] != self.eps_dim:
            raise ValueError(f"eps has {eps.shape[1]} columns; this generator takes {self.eps_dim}")
        h = None
        images: list[torch.Tensor] = []
        attention: list[torch.Tensor | None] = []
        mus, logvars = [], []
        offset = 0
        for i, (stage, head) in enumerate(zip(self.stages, self.heads, strict=True)):
            n = self.eps_dims[i]
            e = None
            if n and eps is not None:
                e = eps[:, offset : offset + n]
            offset += n
            out = stage(h, text, z, e)
            h = out.features
            images.append(head(h))
            if i > 0:
                attention.append(out.attention)
            if out.mu is not None:
                mus.append(out.mu)
                logvars.append(out.logvar)
        mu = None if not mus else (mus[0] if len(mus) == 1 else torch.cat(mus, dim=1))
        logvar = (
            None if not logvars else (logvars[0] if len(logvars) == 1 else torch.cat(logvars, 1))
        )
        return GeneratorOutput(images, attention, mu, logvar)


def build_stagewise(
    params: StagewiseGeneratorParams, registry: Any = None, **ctx: Any
) -> StagewiseGenerator:
    stages: list[nn.Module] = []
    heads: list[nn.Module] = []
    in_channels: int | None = None
    in_resolution: int | None = None
    for i, slot in enumerate(params.stages):
        try:
            stage = registry.build(
                "stage",
                slot,
                channels=params.gf,
                text_dim=params.text_dim,
                z_dim=params.z_dim,
                in_channels=in_channels,
                in_resolution=in_resolution,
                index=i,
            )
        except PluginError as exc:
            raise PluginError(f"generator 'stagewise': stages.{i}: {exc}") from exc
        for attr in ("out_channels", "out_resolution"):
            if getattr(stage, attr, None) is None:
                raise PluginError(
                    f"generator 'stagewise': stages.{i} ('{slot.type}') has no {attr}; "
                    "is the first stage an 'initial' stage?"
                )
        stages.append(stage)
        heads.append(registry.build("stage", params.image_head, in_channels=stage.out_channels))
        in_channels, in_resolution = stage.out_channels, stage.out_resolution
    gen = StagewiseGenerator(stages, heads, params.z_dim, params.text_dim)
    return apply_init(gen, params.init)
