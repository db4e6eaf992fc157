"""The fusion blocks' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from pydantic import Field

from t2i_stages.plugin import (
    Params,
)


class WordAttentionParams(Params):
    """AttnGAN word attention. Parameters: ``text_dim * channels`` (the 1x1 word projection).

    ``reference_mask_layout``: the reference code repeats the (B, T) mask as
    ``mask.repeat(H*W, 1)`` against scores laid out batch-major, so for B > 1 each pixel row
    gets the mask of the wrong caption. Not listed in §13.6; default false (the correct
    alignment). Set true only to reproduce the reference numbers exactly.
    """

    reference_mask_layout: bool = Field(
        False, description="Reproduce the reference's misaligned mask.repeat (default: aligned)."
    )
    sdpa: bool = Field(
        False,
        description="In training, compute the attention with torch's fused "
        "scaled_dot_product_attention (float-rounding close, no (B, H*W, T) weights kept) and "
        "return no attention map; eval-mode forwards (samples, evaluation, export) still return it.",
    )


class DynamicMemoryParams(Params):
    """DM-GAN dynamic memory. Parameters at C channels and nef text size:
    ``nef + C`` (gates) ``+ 2C(nef+1) + 2C(C+1)`` (memory) ``+ 2 C(2C+1)`` (key, value)
    ``+ 2C + 1`` (response gate); 58,177 at C 64, nef 256.

    Reference quirks (§13.6), each defaulting to the reference code:
    - ``detach_global``: the global image feature feeding the writing gate and M_r is detached.
    - ``duplicate_response``: the block outputs ``[h' ; h']`` (h' concatenated with itself);
      false gives ``[h' ; o]`` (the response with the read memory).
    - ``reference_mask_layout``: the misaligned ``mask.repeat`` of the reference (not in §13.6;
      default false = correct alignment, see word_attention).
    """

    detach_global: bool = Field(
        True, description="Detach the pooled image feature in memory writing (reference: true)."
    )
    duplicate_response: bool = Field(
        True, description="Output [h'; h'] as the reference does; false outputs [h'; o]."
    )
    reference_mask_layout: bool = Field(
        False, description="Reproduce the reference's misaligned mask.repeat (default: aligned)."
    )
    sdpa: bool = Field(
        False,
        description="In training, compute the attention with torch's fused "
        "scaled_dot_product_attention (float-rounding close, no (B, H*W, T) weights kept) and "
        "return no attention map; eval-mode forwards (samples, evaluation, export) still return it.",
    )


class AffineFusionParams(Params):
    """DF-GAN deep fusion (DFBlock). Parameters: ``2 * 2 * (y*C + C + C*C + C)`` for condition
    size y and C channels (628,736 at y 356, C 256). DF-GAN feeds y = [z ; sentence].
    """

    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope after each affine.")
