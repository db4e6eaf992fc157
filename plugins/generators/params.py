"""The generators' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_RESOLUTION,
    ConditioningSlot,
    FusionSlot,
    Params,
    StageSlot,
)
from t2i_stages.plugins.common.params import InitName


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


class DFGANGeneratorParams(Params):
    """DF-GAN generator (9.74M parameters at nf 32, 256 px, y = 100 + 256).

    Weight init is torch's default except the affine layers' last Linear (identity start),
    as in the reference. ``fusion`` is the block used twice in every G_Block (DF-GAN's DFBlock
    is ``affine``); ``conditioning`` gives the vector concatenated after z.
    """

    nf: int = Field(32, gt=0, le=MAX_CHANNELS, description="Base channel width (ngf).")
    z_dim: int = Field(100, gt=0, le=MAX_CHANNELS, description="Noise size.")
    text_dim: int = Field(256, gt=0, le=MAX_CHANNELS, description="Sentence size (DAMSM nef, 256).")
    resolution: int = Field(256, le=MAX_RESOLUTION, description="Output size, a power of two >= 8.")
    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="sentence"),
        description="The text vector concatenated with z to form the fusion condition.",
    )
    fusion: FusionSlot = Field(
        default_factory=lambda: FusionSlot(type="affine"),
        description="Fusion block used twice per G_Block (DF-GAN: affine).",
    )

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 8 or value & (value - 1):
            raise ValueError("resolution must be a power of two >= 8")
        return value


def stagewise_resolutions(params: StagewiseGeneratorParams, registry: Any) -> list[int] | None:
    """The stages' resolutions from their params (``ComponentSpec.resolutions``): each stage
    plugin's ``out_resolution`` in turn; None if one of them cannot tell without building."""
    out: list[int] = []
    side: int | None = None
    for slot in params.stages:
        out_resolution = registry.get("stage", slot.type).spec.out_resolution
        if out_resolution is None:
            return None
        side = out_resolution(registry.slot_params("stage", slot), side)
        if side is None:
            return None
        out.append(int(side))
    return out


def dfgan_resolutions(params: DFGANGeneratorParams, registry: Any) -> list[int]:
    """DF-GAN has one stage, at its ``resolution``."""
    return [params.resolution]
