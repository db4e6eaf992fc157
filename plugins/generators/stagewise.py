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
from pydantic import Field, field_validator
from torch import nn

from t2i_stages.plugin import (
    MAX_CHANNELS,
    GeneratorOutput,
    Params,
    PluginError,
    StageSlot,
    TextFeatures,
)
from t2i_stages.plugins.common import apply_init
from t2i_stages.plugins.common.init import InitName


def _default_stages() -> list[StageSlot]:
    return [StageSlot(type="initial"), StageSlot(type="refine"), StageSlot(type="refine")]


class StagewiseGeneratorParams(Params):
    """A generator assembled from stages; the default is AttnGAN's CUB layout (3 stages).

    Each stage names its own conditioning level and fusion block. Every stage's features go
    through its own image head. ``text_dim`` declares the text feature size (nef: 256 for the
    DAMSM encoder, 512 for GR-GAN's ITM); the training engine checks it against the encoder.

    ``init``: "orthogonal" is the reference ``weights_init`` (AttnGAN, DM-GAN and GR-GAN all
    apply it to G: orthogonal conv/linear weights, BatchNorm weight ~ N(1, 0.02)); "pytorch"
    keeps torch's defaults. It reaches the built-in components only: a stage, fusion block or
    conditioning level from another package keeps its own init (``plugins.common.init``).
    """

    text_dim: int = Field(
        256, gt=0, le=MAX_CHANNELS, description="Text feature size nef (words and sentence)."
    )
    z_dim: int = Field(100, gt=0, le=MAX_CHANNELS, description="Noise size (GAN.Z_DIM).")
    gf: int = Field(
        32, gt=0, le=MAX_CHANNELS, description="Generator feature channels (GAN.GF_DIM)."
    )
    stages: list[StageSlot] = Field(
        default_factory=_default_stages,
        description="The stages in order; the first one starts from noise (type initial).",
    )
    image_head: StageSlot = Field(
        default_factory=lambda: StageSlot(type="to_image"),
        description="The head turning each stage's features into an image (one per stage).",
    )
    init: InitName = Field(
        "orthogonal",
        description="Weight init of the built-in components: orthogonal (reference) or pytorch; "
        "a component from another package keeps its own.",
    )

    @field_validator("stages")
    @classmethod
    def _non_empty(cls, value: list[StageSlot]) -> list[StageSlot]:
        if not value:
            raise ValueError("a generator needs at least one stage")
        return value


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
