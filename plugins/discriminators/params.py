"""The discriminators' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    every trunk/down/3x3 conv, convs with bias, no BatchNorm; the logit convs stay plain); "none"
    is plain convs with bias (an ablation option: a D that a gradient penalty holds instead).

    ``cond_head`` with ``conditioning: none`` builds the conditional head but never uses it:
    that is GR-GAN's D64 (1.77M of its 2.47M parameters); ``cond_logits`` then returns None.

    ``init``: "orthogonal" is the reference ``weights_init`` that AttnGAN and DM-GAN apply to
    their Ds; GR-GAN leaves its Ds at torch's default init, so its recipe sets "pytorch".

    ``spectral_norm`` (reference quirk, with ``norm: spectral``): "torch" is torch's
    parametrization (u = W v first, then v = W^T u; u and v advance in training mode only);
    "reference" is DM-GAN's and GR-GAN's ``code/spectral.py`` (v = W^T u first, then u = W v, in
    every forward, eval mode included, so the stored v never matters). The same weights and u
    give other logits under each (about 0.5% in the D's gradients at init; far more where u and
    v are out of step, as in a released file). Default "torch", which every run so far trained
    with; the GR-GAN import sets "reference" to reproduce the release.
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
    norm: Literal["batch", "spectral", "none"] = Field(
        "batch",
        description="batch (AttnGAN), spectral (DM-GAN, GR-GAN) or none (plain convs, for a D "
        "held by a gradient penalty such as bce_mismatch's r1_gamma instead).",
    )
    uncond_head: bool = Field(True, description="Build the unconditional head.")
    cond_head: bool = Field(True, description="Build the conditional head.")
    cond_head_kind: Literal["concat", "projection", "words"] = Field(
        "concat",
        description="concat: the reference head (tile the condition over 4x4, concatenate, "
        "3x3 block, 4x4 conv); projection: Miyato & Koyama's projection head, a linear logit of "
        "the summed features plus their inner product with a linear map of the condition "
        "; words: one logit per real word, each on the regions it attends to (word_head.py; "
        "needs the words conditioning). Both are ablation options of issue 21, not a "
        "reference model's design.",
    )
    projection_norm: Literal["none", "spectral"] = Field(
        "none",
        description="With cond_head_kind: projection, spectral-norm its two linear maps (the "
        "logit and the condition's embedding), as Miyato & Koyama's projection D does, so that "
        "the text term is bounded like the trunk; none (the default, what the first runs "
        "trained with) leaves them plain.",
    )
    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="sentence"),
        description="Condition for the conditional head: sentence, mean_words, ca, or none.",
    )
    init: InitName = Field(
        "orthogonal",
        description="Weight init of the built-in parts: orthogonal or pytorch; a conditioning "
        "level from another package keeps its own.",
    )
    spectral_norm: Literal["torch", "reference"] = Field(
        "torch",
        description="Power iteration of norm: spectral. torch: u from v, then v, in training "
        "mode only (the default, what runs trained with); reference: DM-GAN/GR-GAN "
        "code/spectral.py, v from u first, then u, in every forward (eval too).",
    )

    extra_blocks: int = Field(
        0,
        ge=0,
        le=8,
        description="3x3 conv blocks (conv, norm, LeakyReLU, the channels kept) after each of the "
        "trunk's first halvings: a deeper D at the same widths, which sees pixel-level texture "
        "(grain, soft edges) through more layers; 0 (the default, every reference) adds none.",
    )
    minibatch_std: int = Field(
        0,
        ge=0,
        le=64,
        description="Append the minibatch standard-deviation map over groups of this many images "
        "to the features before the heads (ProGAN/StyleGAN), so the D can see a batch that "
        "collapses onto one value where captions leave it open; 0 (the default, every "
        "reference) builds none.",
    )

    aux_projection: ConditioningSlot | None = Field(
        None,
        description="A second conditioning level (a vector: token_embedding, say) whose "
        "projection term <V c, phi> (phi: the 4x4 features summed) is added to the conditional "
        "logit of the concat or projection head; V starts at zero, so the D begins as its "
        "head alone and learns what the second level tells apart (an ablation option of issue "
        "21: the reference head on the frozen features plus the D's own word embedding). "
        "None (the default, every reference) adds nothing.",
    )

    batched_power_iteration: bool = Field(
        False,
        description="With norm: spectral, advance the power iterations of all the trunk's "
        "spectral-normed convs together in one pre-forward step (multi-tensor normalisations "
        "instead of a chain of small ops per weight; the same u, v and outputs to float "
        "rounding, bit for bit on the CPU). Fewer, larger kernels: a GPU setting.",
    )

    @model_validator(mode="after")
    def _spectral_only(self) -> StagewiseDiscriminatorParams:
        if self.spectral_norm != "torch" and self.norm != "spectral":
            raise ValueError("spectral_norm: reference needs norm: spectral")
        if self.batched_power_iteration and self.norm != "spectral":
            raise ValueError("batched_power_iteration needs norm: spectral")
        if self.projection_norm != "none" and self.cond_head_kind != "projection":
            raise ValueError("projection_norm needs cond_head_kind: projection")
        if self.aux_projection is not None and (
            not self.cond_head or self.cond_head_kind == "words"
        ):
            raise ValueError("aux_projection adds to a concat or projection conditional head")
        return self


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
