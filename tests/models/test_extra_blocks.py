"""The extra_blocks option of the stagewise discriminator: a deeper trunk at the same widths."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, random_text

from t2i_stages.recipe import DiscriminatorSlot


def _build(registry, **extra):
    params = {"df": 4, "text_dim": TEXT_DIM, "resolution": 32, "norm": "spectral", **extra}
    return registry.build("discriminator", DiscriminatorSlot(type="stagewise", params=params))


def _trunk_convs(D):
    return [m for m in D.trunk.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("norm", ["spectral", "batch"])
def test_each_halving_gets_its_blocks_and_the_output_keeps_its_shape(registry, norm):
    plain, deep = _build(registry, norm=norm), _build(registry, norm=norm, extra_blocks=2)
    # 32 px: three halvings (3 -> 4 -> 8 -> 16 channels), each followed by two 3x3 blocks
    assert len(_trunk_convs(plain)) == 3
    convs = _trunk_convs(deep)
    assert len(convs) == 9
    assert [c.kernel_size for c in convs] == [(4, 4), (3, 3), (3, 3)] * 3
    assert [(c.in_channels, c.out_channels) for c in convs[1:3]] == [(4, 4), (4, 4)]
    added = sum(p.numel() for p in deep.parameters()) - sum(p.numel() for p in plain.parameters())
    per_block = lambda ch: ch * ch * 9 + (ch if norm == "spectral" else 2 * ch)  # noqa: E731
    assert added == 2 * (per_block(4) + per_block(8) + per_block(16))
    x = torch.randn(2, 3, 32, 32)
    f = deep(x)
    assert f.shape == plain(x).shape == (2, 16, 4, 4)
    c = deep.condition(random_text(b=2))
    assert deep.uncond_logits(f).shape == deep.cond_logits(f, c).shape == (2,)


def test_the_default_trunk_is_the_references(registry):
    """0 blocks keeps the layer indices that released checkpoints are mapped onto."""
    names = [n for n, _ in _build(registry).trunk.named_children()]
    assert names == [str(i) for i in range(4)]  # conv, LeakyReLU, two down blocks


def test_a_negative_count_is_refused(registry):
    with pytest.raises(Exception, match="extra_blocks"):
        _build(registry, extra_blocks=-1)
