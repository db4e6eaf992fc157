"""Built-in generator stages: initial, refinement and to-image head.

A generator builds each stage with the context ``channels`` (gf), ``text_dim``, ``z_dim``,
``in_channels`` and ``in_resolution`` (None for the first stage). Stages map
``(h, text, z, eps) -> StageOutput`` and expose ``out_channels``, ``out_resolution`` and
``eps_dim`` (the CA epsilon size they consume). The head maps features to an image.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl

from . import initial, refine, to_image


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {
        "initial": ComponentSpec(
            initial.build_initial,
            initial.InitialStageParams,
            "INIT_STAGE_G: [condition ; z] -> FC -> BN -> GLU -> upBlocks to the first resolution",
        ),
        "refine": ComponentSpec(
            refine.build_refine,
            refine.RefineStageParams,
            "refinement: fusion block -> ResBlocks -> upBlock x2, with attention",
        ),
        "to_image": ComponentSpec(
            to_image.build_to_image, NoParams, "conv3x3 to RGB then tanh (GET_IMAGE_G)"
        ),
    }
