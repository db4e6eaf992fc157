"""The losses' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from t2i_stages.plugin import (
    Params,
)


class BCEMismatchParams(Params):
    """The AttnGAN / DM-GAN / GR-GAN discriminator loss (architectures.md §6.2, §4.2).

    D: real pairs -> 1, fake pairs -> 0, and mismatched pairs (real image k with the condition of
    sample k+1) -> 0. With both heads: 1/2 (u_real + c_real) + 1/3 (u_fake + c_fake + c_mis);
    with the conditional head only: c_real + 1/2 (c_fake + c_mis); with the unconditional head
    only: 1/2 (u_real + u_fake) (GR-GAN's D1). G: each present head on fakes -> 1, summed.
    """

    mismatch: bool = Field(True, description="Add the mismatched-pair term for conditional heads.")
    r1_gamma: float = Field(
        0.0,
        ge=0,
        description="R1 penalty (Mescheder et al. 2018): gamma/2 * E||grad_x D(x)||^2 on real images, "
        "over the logits of D's heads (the conditional one with the real pairs); 0 = none, as "
        "the references.",
    )


class HingeMAGPParams(Params):
    """DF-GAN's hinge loss with the matching-aware zero-centred gradient penalty (§7).

    D: mean ReLU(1 - C(x, s)) + 1/2 [mean ReLU(1 + C(x_fake, s)) + mean ReLU(1 + C(x_rolled, s))]
    + weight * mean(||[dC/dx ; dC/ds]||^p) on real matched pairs. G: -mean C(x_fake, s).
    """

    gp_weight: float = Field(2.0, ge=0, description="MA-GP weight k (2 in DF-GAN).")
    gp_power: float = Field(6.0, gt=0, description="MA-GP power p (6 in DF-GAN).")
    mismatch: Literal["roll", "none"] = Field(
        "roll", description="Mismatched pairs: roll the images by one against the conditions."
    )


class KLParams(Params):
    """KL(N(mu, sigma^2) || N(0, I)), averaged over batch and every CA dimension (mean, not sum,
    as in all three reference repos; weight 1 there)."""


class ModeSeekingParams(Params):
    """MSGAN's mode-seeking term (Mao et al., CVPR 2019): G draws each caption twice, from two
    noise vectors, and is penalised by ``1 / (d_images / d_z + eps)``, where ``d`` is the mean
    absolute difference (per stage, averaged over the loss's stages). It pushes G to make the
    noise matter, so that a caption that leaves an attribute open gets its whole spread rather
    than one favourite value (a conditional GAN's mode collapse)."""

    eps: float = Field(1e-5, gt=0, description="Keeps the ratio finite when the images agree.")
    pairs: int | None = Field(
        None,
        gt=0,
        description="Captions of each batch drawn a second time (the first ones; default all): "
        "the second generator pass costs about as much as the first, so fewer pairs cost less.",
    )


Direction = Literal["image_to_text", "text_to_image"]


class SentenceMatchingParams(Params):
    """Sentence-image matching loss S0 + S1: cosine of the global image code and the sentence."""

    gamma3: float = Field(10.0, gt=0, description="Sharpness of the B x B logits (γ3, §6.1).")
    class_masking: bool = Field(
        True, description="Mask off-diagonal pairs of the same class before the softmax (§6.1.8)."
    )
    directions: list[Direction] = Field(
        default_factory=lambda: ["image_to_text", "text_to_image"],
        min_length=1,
        description="Which cross-entropy directions to sum: image_to_text (S0) and/or "
        "text_to_image (S1).",
    )


class WordRegionMatchingParams(Params):
    """Word-region matching loss W0 + W1 over attention-weighted region contexts (§6.1)."""

    gamma1: float = Field(4.0, gt=0, description="Sharpness of the attention over regions (γ1).")
    gamma2: float = Field(
        5.0, gt=0, description="Weight of word relevance in the log-sum-exp (γ2)."
    )
    gamma3: float = Field(10.0, gt=0, description="Sharpness of the B x B logits (γ3).")
    class_masking: bool = Field(
        True, description="Mask off-diagonal pairs of the same class before the softmax (§6.1.8)."
    )
    directions: list[Direction] = Field(
        default_factory=lambda: ["image_to_text", "text_to_image"],
        min_length=1,
        description="Which cross-entropy directions to sum: image_to_text (W0) and/or "
        "text_to_image (W1).",
    )
