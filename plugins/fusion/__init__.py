"""Built-in fusion blocks: word attention, dynamic memory, DF-GAN affine fusion.

A fusion block is built with ``channels`` (image feature channels) and ``text_dim`` (the size of
what its conditioning level gives) and maps ``(h, Condition) -> FusionOutput(features,
attention)``. It exposes ``requires`` ("sequence" or "vector") and ``out_channels``.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import affine, dynamic_memory, word_attention


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {
        "word_attention": ComponentSpec(
            word_attention.build_word_attention,
            word_attention.WordAttentionParams,
            "AttnGAN word attention: [h ; word context], attention (B, T, H, W)",
        ),
        "dynamic_memory": ComponentSpec(
            dynamic_memory.build_dynamic_memory,
            dynamic_memory.DynamicMemoryParams,
            "DM-GAN dynamic memory: writing gate, key addressing, value reading, response gate",
        ),
        "affine": ComponentSpec(
            affine.build_affine,
            affine.AffineFusionParams,
            "DF-GAN deep fusion: two text-conditioned affine transforms with LeakyReLU",
        ),
    }
