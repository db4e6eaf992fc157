"""The discriminators' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_RESOLUTION,
    ConditioningSlot,
    Params,
)
from t2i_stages.plugins.common.params import InitName


class StagewiseDiscriminatorParams(Params):
    """One discriminator per generator stage, with optional unconditional / conditional heads.

    ``norm``: "batch" is AttnGAN (BatchNorm after every conv but the first, convs without bias);
    "spectral" is DM-GAN/GR-GAN (torch's spectral-norm parametrization, one power iteration, on
    every trunk/down/3x3 conv, convs with bias, no BatchNorm; the logit convs stay plain).

    ``cond_head`` with ``conditioning: none`` builds the conditional head but never uses it:
    that is GR-GAN's D64 (1.77M of its 2.47M parameters); ``cond_logits`` then returns None.

    ``init``: "orthogonal" is the reference ``weights_init`` that AttnGAN and DM-GAN apply to
    their Ds; GR-GAN leaves its Ds at torch's default init, so its recipe sets "pytorch".
    """

    df: int = Field(
        64, gt=0, le=MAX_CHANNELS, description="Discriminator base channels (GAN.DF_DIM)."
    )
    text_dim: int = Field(
        256, gt=0, le=MAX_CHANNELS, description="Text feature size nef the condition comes from."
    )
    resolution: int | None = Field(
        None,
        le=MAX_RESOLUTION,
        description="Input image size; null takes the resolution the engine passes.",
    )
    norm: Literal["batch", "spectral"] = Field("batch", description="batch (AttnGAN) or spectral.")
    uncond_head: bool = Field(True, description="Build the unconditional head.")
    cond_head: bool = Field(True, description="Build the conditional head.")
    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="sentence"),
        description="Condition for the conditional head: sentence, mean_words, ca, or none.",
    )
    init: InitName = Field(
        "orthogonal",
        description="Weight init of the built-in parts: orthogonal or pytorch; a conditioning "
        "level from another package keeps its own.",
    )


class DFGANDiscriminatorParams(Params):
    """DF-GAN discriminator (6.62M at nf 32, 256 px) and its NetC head (0.30M).

    ``unused_shortcuts`` (reference quirk): the reference builds the 1x1 shortcut conv in every
    D_Block, also where the channel count does not change and it is never used (3 x 65,792
    parameters at nf 32); true (the reference) keeps them so the count matches 6.62M. They get
    no gradient; false drops them without changing the function.
    Weight init is torch's default, as in the reference.
    """

    nf: int = Field(32, gt=0, le=MAX_CHANNELS, description="Base channel width (ndf).")
    text_dim: int = Field(
        256, gt=0, le=MAX_CHANNELS, description="Sentence size the NetC head concatenates."
    )
    resolution: int | None = Field(
        None,
        le=MAX_RESOLUTION,
        description="Input image size; null takes the resolution the engine passes.",
    )
    cond_head: bool = Field(True, description="Build NetC, the conditional (one-way) head.")
    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="sentence"),
        description="The vector NetC compares images with (DF-GAN: sentence).",
    )
    unused_shortcuts: bool = Field(
        True, description="Build the never-used 1x1 shortcuts as the reference (count fidelity)."
    )
