"""A built-in model's ``init`` reaches the built-in components only: a component from another
package keeps the weights its factory gave it (issue 18: a plugin's zero-initialised conv came
out of the stagewise generator with weights up to 0.611)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import (
    ComponentSpec,
    ConditioningSlot,
    GeneratorSlot,
    NoParams,
    Params,
    StageOutput,
    hookimpl,
    load_registry,
)
from t2i_stages.plugins.common.init import initialises_itself, own_modules


class ZeroSkipParams(Params):
    """A refinement stage whose last conv starts at zero (so it starts as a pure upsample)."""

    conditioning: ConditioningSlot = ConditioningSlot(type="words")


class ZeroSkipStage(nn.Module):
    """What a third party writes: its own class, its own init."""

    def __init__(self, cond: nn.Module, channels: int, in_channels: int, in_resolution: int):
        super().__init__()
        self.conditioning = cond
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.norm = nn.BatchNorm2d(channels)  # torch's default: weight 1, bias 0
        self.out_channels, self.out_resolution, self.eps_dim = channels, 2 * in_resolution, 0

    def forward(self, h, text, z, eps=None) -> StageOutput:
        return StageOutput(self.norm(self.conv(self.up(h))))


class ZeroFusion(nn.Module):
    """A third-party fusion block inside a built-in stage, with a zero-initialised projection."""

    requires = "sequence"

    def __init__(self, channels: int):
        super().__init__()
        self.out_channels = channels
        self.proj = nn.Conv2d(channels, channels, 1, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, h, cond):
        from t2i_stages.plugin import FusionOutput

        return FusionOutput(h + self.proj(h))


def _stage(params: ZeroSkipParams, registry: Any = None, **ctx: Any) -> ZeroSkipStage:
    cond = registry.build("conditioning", params.conditioning, text_dim=ctx["text_dim"])
    return ZeroSkipStage(cond, ctx["channels"], ctx["in_channels"], ctx["in_resolution"])


class _Plugin:
    @hookimpl
    def t2i_stages_stages(self) -> dict[str, ComponentSpec]:
        return {"zero_skip": ComponentSpec(_stage, ZeroSkipParams, "test stage")}

    @hookimpl
    def t2i_stages_fusion(self) -> dict[str, ComponentSpec]:
        return {
            "zero_fusion": ComponentSpec(
                lambda p, channels=None, **ctx: ZeroFusion(channels), NoParams, "test fusion"
            )
        }


def _generator(init: str) -> nn.Module:
    torch.manual_seed(0)
    registry = load_registry(plugins=[("zero-init", _Plugin())])
    stages = [
        {"type": "initial", "params": {"conditioning": {"type": "ca", "params": {"c_dim": 4}}}},
        {"type": "refine", "params": {"fusion": {"type": "zero_fusion"}, "residual_blocks": 1}},
        {"type": "zero_skip"},
    ]
    slot = GeneratorSlot(
        type="stagewise",
        params={"text_dim": 8, "z_dim": 4, "gf": 8, "stages": stages, "init": init},
    )
    return registry.build("generator", slot)


def _is_orthogonal(w: torch.Tensor) -> bool:
    m = w.reshape(w.shape[0], -1)
    gram = m @ m.t() if m.shape[0] <= m.shape[1] else m.t() @ m
    return torch.allclose(gram, torch.eye(gram.shape[0]), atol=1e-4)


def test_a_component_that_initialises_itself_keeps_its_init():
    gen = _generator("orthogonal")
    zero_stage, fusion = gen.stages[2], gen.stages[1].fusion
    assert initialises_itself(zero_stage) and initialises_itself(fusion)
    assert zero_stage.conv.weight.abs().max() == 0 and zero_stage.conv.bias.abs().max() == 0
    assert fusion.proj.weight.abs().max() == 0
    assert torch.equal(zero_stage.norm.weight, torch.ones(8))  # not N(1, 0.02)
    # ... while the built-in components around them got the reference init
    assert _is_orthogonal(gen.stages[0].fc[0].weight)
    res_conv = gen.stages[1].residual[0].block[0]
    assert _is_orthogonal(res_conv.weight)


def test_the_walk_visits_built_in_modules_in_modules_order_and_skips_foreign_subtrees():
    gen = _generator("pytorch")
    skipped = {id(m) for s in (gen.stages[2], gen.stages[1].fusion) for m in s.modules()}
    expected = [m for m in gen.modules() if id(m) not in skipped]
    assert [id(m) for m in own_modules(gen)] == [id(m) for m in expected]
    builtin = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sequential(nn.BatchNorm2d(2)))
    assert list(own_modules(builtin)) == list(builtin.modules())
