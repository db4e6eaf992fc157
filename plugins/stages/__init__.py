"""Built-in generator stages: initial, refinement and to-image head.

A generator builds each stage with the context ``channels`` (gf), ``text_dim``, ``z_dim``,
``in_channels`` and ``in_resolution`` (None for the first stage). Stages map
``(h, text, z, eps) -> StageOutput`` and expose ``out_channels``, ``out_resolution`` and
``eps_dim`` (the CA epsilon size they consume). The head maps features to an image.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl

from .params import (
    InitialStageParams,
    RefineStageParams,
    initial_out_resolution,
    refine_out_resolution,
)


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {
        "initial": ComponentSpec(
            "t2i_stages.plugins.stages.initial:build_initial",
            InitialStageParams,
            "INIT_STAGE_G: [condition ; z] -> FC -> BN -> GLU -> upBlocks to the first resolution",
            out_resolution=initial_out_resolution,
        ),
        "refine": ComponentSpec(
            "t2i_stages.plugins.stages.refine:build_refine",
            RefineStageParams,
            "refinement: fusion block -> ResBlocks -> upBlock x2, with attention",
            out_resolution=refine_out_resolution,
        ),
        "to_image": ComponentSpec(
            "t2i_stages.plugins.stages.to_image:build_to_image",
            NoParams,
            "conv3x3 to RGB then tanh (GET_IMAGE_G)",
        ),
    }
