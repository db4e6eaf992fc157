"""The stagewise D's ``norm: none``: plain convs, for a D that a gradient penalty holds."""

from __future__ import annotations

import torch
from model_helpers import TEXT_DIM, random_text
from torch.nn.utils import parametrize

from t2i_stages.recipe import DiscriminatorSlot, LossSlot


def _build(registry, norm: str):
    params = {"df": 4, "text_dim": TEXT_DIM, "resolution": 32, "norm": norm}
    return registry.build("discriminator", DiscriminatorSlot(type="stagewise", params=params))


def test_plain_convs_carry_a_bias_and_nothing_normalises_them(registry):
    plain, spectral = _build(registry, "none"), _build(registry, "spectral")
    convs = [m for m in plain.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(c.bias is not None for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    count = lambda d: sum(p.numel() for p in d.parameters())  # noqa: E731
    assert count(plain) == count(spectral)  # the same weights, less the power iteration


def test_r1_holds_a_plain_d_and_reaches_its_weights(registry):
    from t2i_stages.training.step import DiscriminatorCritic

    torch.manual_seed(0)
    D = _build(registry, "none")
    loss_of = lambda gamma: registry.build(  # noqa: E731
        "loss", LossSlot(type="bce_mismatch", params={"r1_gamma": gamma})
    )
    text = random_text(b=4)
    real, fake = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    critic, cond = DiscriminatorCritic(D, D), D.condition(text)
    plain, held = (loss_of(g).d_loss(critic, real, fake, cond) for g in (0.0, 10.0))
    assert held > plain  # the penalty is on: the real images' gradient is not zero
    held.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.trunk.parameters())
