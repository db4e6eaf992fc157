"""The generator stages' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from pydantic import Field

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_LAYERS,
    MAX_RESOLUTION,
    ConditioningSlot,
    FusionSlot,
    Params,
)


class InitialStageParams(Params):
    """Initial stage: fully connected layer, then upsampling to the first resolution.

    Its input channels are ``ngf0 = multiplier * gf`` (16 * gf in the papers); parameters are
    ``(c_dim + z_dim) * ngf0 * s*s * 2`` for the Linear (no bias), BatchNorm1d, and the upBlocks
    (19.16M at gf 64, 12.02M at gf 48), plus the conditioning level's (CA: 0.10M at nef 256).
    """

    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="ca"),
        description="What text the stage sees: a vector level (ca, sentence, mean_words) or none.",
    )
    multiplier: int | None = Field(
        None,
        gt=0,
        le=MAX_LAYERS,
        description="ngf0 = multiplier * gf channels at the start; null: 2**upsamples (16), "
        "so the stage ends at gf channels.",
    )
    base_size: int = Field(
        4, gt=0, le=MAX_RESOLUTION, description="Spatial size right after the Linear layer."
    )
    upsamples: int = Field(
        4, ge=0, le=10, description="Number of x2 upBlocks (4 gives 64 from 4; 10 gives 4096)."
    )


class RefineStageParams(Params):
    """Refinement stage: fusion block -> ``residual_blocks`` ResBlocks -> upBlock (x2).

    Parameters at C channels, fused width F (2C for word attention and dynamic memory):
    fusion + ``residual_blocks * (27 F^2 + 6 F)`` + ``9 F * 2C + 4C`` (upBlock), e.g. 0.84M for
    AttnGAN (C 48, R 3) and 1.54M for DM-GAN (C 64, R 3).
    """

    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="words"),
        description="What text the fusion block sees (words, sentence_tiled, sentence, ...).",
    )
    fusion: FusionSlot = Field(
        default_factory=lambda: FusionSlot(type="word_attention"),
        description="How text is mixed into the image features.",
    )
    residual_blocks: int = Field(
        2, ge=0, le=MAX_LAYERS, description="ResBlocks after fusion (R_NUM: 2 CUB, 3 COCO)."
    )
    channels: int | None = Field(
        None, gt=0, le=MAX_CHANNELS, description="Output channels; null keeps the generator's gf."
    )


def initial_out_resolution(params: InitialStageParams, in_resolution: int | None) -> int:
    """The initial stage's side, from its params alone (``ComponentSpec.out_resolution``)."""
    return params.base_size * 2**params.upsamples


def refine_out_resolution(params: RefineStageParams, in_resolution: int | None) -> int | None:
    """A refinement stage doubles the side; None when it would be the first stage."""
    return None if in_resolution is None else 2 * in_resolution
