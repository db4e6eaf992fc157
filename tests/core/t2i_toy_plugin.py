"""A third-party-style plugin used by the core tests (installed through a fake dist-info)."""

from __future__ import annotations

from pydantic import Field

from t2i_stages import ComponentSpec, Params, hookimpl
from t2i_stages.recipe.slots import FusionSlot, StageSlot


class ToyData(Params):
    """A list of numbers."""

    size: int = Field(8, gt=0, description="How many items.")


class ToyFusion(Params):
    heads: int = Field(1, ge=1, description="Attention heads.")


class ToyStage(Params):
    channels: int = Field(4, description="Feature channels.")
    fusion: FusionSlot | None = Field(None, description="Optional fusion block.")


class ToyGenerator(Params):
    width: int = Field(4, description="Base width.")
    stages: list[StageSlot] = Field(default_factory=list, description="The stages, in order.")


class Built:
    def __init__(self, kind, params, ctx):
        self.kind, self.params, self.ctx = kind, params, ctx


class ToyAdversarial(Built):
    """Enough of an adversarial loss for the role check of validation's phase 3."""

    role = "adversarial"

    def d_loss(self, critic, real, fake, cond):
        return 0.0

    def g_loss(self, critic, fake, cond):
        return 0.0


def _factory(kind):
    def build(params, registry=None, **ctx):
        if kind == "generator":
            inner = [registry.build("stage", s) for s in params.stages]
            g = Built(kind, params, {"stages": inner, **ctx})
            g.resolutions = [8 * 2**i for i in range(len(inner))]
            return g
        if kind == "loss":
            return ToyAdversarial(kind, params, ctx)
        return Built(kind, params, ctx)

    return build


@hookimpl
def t2i_stages_datasets():
    return {"toy_data": ComponentSpec(_factory("dataset"), ToyData, "toy dataset")}


@hookimpl
def t2i_stages_generators():
    return {"toy_gen": ComponentSpec(_factory("generator"), ToyGenerator, "toy generator")}


@hookimpl
def t2i_stages_stages():
    return {"toy_stage": ComponentSpec(_factory("stage"), ToyStage, "toy stage")}


@hookimpl
def t2i_stages_fusion():
    return {
        "toy_fusion": ComponentSpec(_factory("fusion"), ToyFusion, "toy fusion"),
        "toy_gate": ComponentSpec(_factory("fusion"), ToyFusion, "toy gated fusion"),
    }


@hookimpl
def t2i_stages_discriminators():
    return {"toy_disc": ComponentSpec(_factory("discriminator"), summary="toy discriminator")}


@hookimpl
def t2i_stages_text_encoders():
    return {"toy_text": ComponentSpec(_factory("text_encoder"), summary="toy text encoder")}


@hookimpl
def t2i_stages_losses():
    return {"toy_loss": ComponentSpec(_factory("loss"), summary="toy loss")}
