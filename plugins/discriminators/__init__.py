"""Built-in discriminators: ``stagewise`` (AttnGAN/DM-GAN/GR-GAN, one per stage) and ``dfgan``.

A discriminator is built with ``resolution`` (in its params or in the context the engine
passes) and offers one API to the training engine::

    f = D(images)               # features
    D.uncond_logits(f)          # (B,) raw logits or None (no unconditional head)
    c = D.condition(text)       # (B, d) from the D's own conditioning level, or None
    D.cond_logits(f, c)         # (B,) raw logits or None (no usable conditional head)

Logits are pre-sigmoid; the reference's BCE on sigmoid outputs equals
``binary_cross_entropy_with_logits`` on them. ``D.has_uncond`` / ``D.has_cond`` say which
heads a loss can use; ``D.resolution`` is the image size it expects.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import DFGANDiscriminatorParams, StagewiseDiscriminatorParams


@hookimpl
def t2i_stages_discriminators() -> dict[str, ComponentSpec]:
    return {
        "stagewise": ComponentSpec(
            "t2i_stages.plugins.discriminators.stagewise:build_stagewise_d",
            StagewiseDiscriminatorParams,
            "per-stage D (AttnGAN BN / DM-GAN spectral norm) with uncond and cond heads",
        ),
        "dfgan": ComponentSpec(
            "t2i_stages.plugins.discriminators.dfgan:build_dfgan_d",
            DFGANDiscriminatorParams,
            "DF-GAN D with residual D_Blocks and its NetC conditional head",
        ),
    }
