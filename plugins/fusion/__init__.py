"""Built-in fusion blocks: word attention, dynamic memory, DF-GAN affine fusion.

A fusion block is built with ``channels`` (image feature channels) and ``text_dim`` (the size of
what its conditioning level gives) and maps ``(h, Condition) -> FusionOutput(features,
attention)``. It exposes ``requires`` ("sequence" or "vector") and ``out_channels``.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import AffineFusionParams, DynamicMemoryParams, WordAttentionParams


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {
        "word_attention": ComponentSpec(
            "t2i_stages.plugins.fusion.word_attention:build_word_attention",
            WordAttentionParams,
            "AttnGAN word attention: [h ; word context], attention (B, T, H, W)",
        ),
        "dynamic_memory": ComponentSpec(
            "t2i_stages.plugins.fusion.dynamic_memory:build_dynamic_memory",
            DynamicMemoryParams,
            "DM-GAN dynamic memory: writing gate, key addressing, value reading, response gate",
        ),
        "affine": ComponentSpec(
            "t2i_stages.plugins.fusion.affine:build_affine",
            AffineFusionParams,
            "DF-GAN deep fusion: two text-conditioned affine transforms with LeakyReLU",
        ),
    }
