"""Clear one-line errors for components that do not fit together."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, recipe_from_file, tiny_generator

from t2i_stages.errors import PluginError
from t2i_stages.recipe import DiscriminatorSlot, GeneratorSlot


def _with_stage(i: int, stage: dict) -> GeneratorSlot:
    data = tiny_generator("attngan").model_dump()
    data["params"]["stages"][i] = stage
    return GeneratorSlot.model_validate(data)


def test_fusion_and_conditioning_must_fit(registry):
    slot = _with_stage(1, {"type": "refine", "params": {"conditioning": {"type": "mean_words"}}})
    with pytest.raises(
        PluginError,
        match="stages.1: .*word_attention' needs a word sequence but conditioning 'mean_words' gives a vector",
    ):
        registry.build("generator", slot)
    slot = _with_stage(
        0, {"type": "initial", "params": {"conditioning": {"type": "words"}, "upsamples": 2}}
    )
    with pytest.raises(PluginError, match="initial stage needs a vector"):
        registry.build("generator", slot)


def test_first_stage_must_start_from_noise(registry):
    slot = _with_stage(0, {"type": "refine"})
    with pytest.raises(PluginError, match="cannot be the first stage"):
        registry.build("generator", slot)


def test_discriminator_needs_a_resolution(registry):
    with pytest.raises(PluginError, match="needs a resolution: set params.resolution"):
        registry.build("discriminator", DiscriminatorSlot(type="stagewise"))
    with pytest.raises(PluginError, match="not a power of two"):
        registry.build("discriminator", DiscriminatorSlot(type="stagewise"), resolution=96)
    with pytest.raises(PluginError, match="both heads are disabled"):
        registry.build(
            "discriminator",
            DiscriminatorSlot(type="stagewise", params={"uncond_head": False, "cond_head": False}),
            resolution=64,
        )


def test_unconditional_stage_and_sentence_conditioned_initial(registry):
    slot = _with_stage(
        0, {"type": "initial", "params": {"conditioning": {"type": "none"}, "upsamples": 2}}
    )
    g = registry.build("generator", slot)
    assert g.eps_dim == 0
    from model_helpers import random_text

    out = g(torch.randn(2, g.z_dim), None, random_text())
    assert out.mu is None and out.images[0].shape == (2, 3, 16, 16)
    assert g.stages[0].fc[0].in_features == g.z_dim
    slot = _with_stage(
        0, {"type": "initial", "params": {"conditioning": {"type": "sentence"}, "upsamples": 2}}
    )
    assert registry.build("generator", slot).stages[0].fc[0].in_features == g.z_dim + TEXT_DIM


def test_paper_recipes_declare_their_text_dim():
    assert recipe_from_file("grgan").generator.params["text_dim"] == 512
    assert all(d.params["text_dim"] == 512 for d in recipe_from_file("grgan").discriminators)
    assert recipe_from_file("attngan").generator.params["text_dim"] == 256
