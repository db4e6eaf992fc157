"""The example components' params, and the stage's output side from them.

Kept apart from the torch code, so registering the plugin imports no torch: `t2i-stages
plugins` and `validate` stay fast with the plugin installed.
"""

from __future__ import annotations

from pydantic import Field

from t2i_stages.plugin import ConditioningSlot, FusionSlot, Params


class GatedCrossAttentionParams(Params):
    """Multi-head pixel-to-word attention whose output enters through a learned sigmoid gate.

    Parameters at C channels and text size D: ``C*C`` (queries) ``+ 2*D*C`` (keys, values)
    ``+ C*C`` (output) ``+ 2*C*C + C`` (gate).
    """

    heads: int = Field(4, ge=1, description="Attention heads; must divide the image channels.")
    gate_bias: float = Field(
        -2.0,
        description="Initial bias of the gate: sigmoid(-2) = 0.12, so the block starts close to "
        "the identity and lets text in as training finds it useful.",
    )
    scale: bool = Field(True, description="Divide the scores by sqrt(channels per head).")


class GatedRefineParams(Params):
    """Refinement with a skip: fusion -> ``residual_blocks`` residual blocks -> up, + skip(h)."""

    conditioning: ConditioningSlot = Field(
        default_factory=lambda: ConditioningSlot(type="words"),
        description="What text the fusion block sees (words, sentence_tiled, ...).",
    )
    fusion: FusionSlot = Field(
        default_factory=lambda: FusionSlot(type="gated_cross_attention"),
        description="How text is mixed into the image features.",
    )
    residual_blocks: int = Field(1, ge=0, description="Residual blocks after the fusion block.")
    skip: bool = Field(True, description="Add the learned skip of the upsampled input.")


def gated_refine_out_resolution(params: GatedRefineParams, in_resolution: int | None) -> int | None:
    """The stage doubles the side (None as a first stage): what ``validate`` checks the
    discriminators and losses against without building anything."""
    return None if in_resolution is None else 2 * in_resolution
