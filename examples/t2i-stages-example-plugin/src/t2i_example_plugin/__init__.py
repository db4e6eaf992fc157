"""t2i-stages example plugin: the hook implementations that register its components.

t2i-stages finds this module through the ``t2i_stages`` entry point in pyproject.toml and calls
the hooks below; each returns ``{name: ComponentSpec(factory, params_model, summary)}``.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import gated_attention, gated_stage

__version__ = "0.1.0"


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {
        "gated_cross_attention": ComponentSpec(
            gated_attention.build_gated_cross_attention,
            gated_attention.GatedCrossAttentionParams,
            "multi-head pixel-to-word attention added through a sigmoid gate (example plugin)",
        )
    }


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {
        "gated_refine": ComponentSpec(
            gated_stage.build_gated_refine,
            gated_stage.GatedRefineParams,
            "fusion -> residual blocks -> upsampling with a learned skip of the input (example plugin)",
        )
    }
