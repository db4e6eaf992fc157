"""t2i-stages example plugin: the hook implementations that register its components.

t2i-stages finds this module through the ``t2i_stages`` entry point in pyproject.toml and calls
the hooks below; each returns ``{name: ComponentSpec(factory, params_model, summary)}``. The
factories are named by strings and imported when a recipe first builds them, so registering the
plugin imports no torch (the params live in ``params``).
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import GatedCrossAttentionParams, GatedRefineParams, gated_refine_out_resolution

__version__ = "0.1.0"


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {
        "gated_cross_attention": ComponentSpec(
            "t2i_example_plugin.gated_attention:build_gated_cross_attention",
            GatedCrossAttentionParams,
            "multi-head pixel-to-word attention added through a sigmoid gate (example plugin)",
        )
    }


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {
        "gated_refine": ComponentSpec(
            "t2i_example_plugin.gated_stage:build_gated_refine",
            GatedRefineParams,
            "fusion -> residual blocks -> upsampling with a learned skip of the input (example plugin)",
            out_resolution=gated_refine_out_resolution,
        )
    }
