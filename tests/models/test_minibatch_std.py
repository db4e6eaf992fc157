"""The minibatch standard-deviation option of the stagewise discriminator."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, random_text

from t2i_stages.plugins.discriminators.minibatch_std import MinibatchStd, group_size
from t2i_stages.recipe import DiscriminatorSlot


def test_the_appended_map_is_each_groups_feature_spread():
    x = torch.randn(8, 5, 4, 4)
    out = MinibatchStd(group=4)(x)
    assert out.shape == (8, 6, 4, 4) and torch.equal(out[:, :5], x)
    # image i is in group i % 2 (groups of 4 out of 8)
    for j in range(2):
        members = x[j::2]
        expected = members.std(0, unbiased=False).mean()
        got = out[j::2, 5]
        torch.testing.assert_close(got, torch.full_like(got, expected.item()), rtol=1e-4, atol=1e-6)
    # a batch of copies has no spread: the map is (nearly) zero
    same = MinibatchStd(group=4)(x[:1].expand(8, -1, -1, -1))
    assert same[:, 5].abs().max() < 1e-3


@pytest.mark.parametrize(
    ("batch", "group", "expected"), [(32, 4, 4), (6, 4, 3), (7, 4, 1), (1, 4, 1), (2, 4, 2)]
)
def test_the_group_divides_the_batch(batch, group, expected):
    assert group_size(batch, group) == expected
    assert MinibatchStd(group)(torch.randn(batch, 2, 4, 4)).shape == (batch, 3, 4, 4)


def test_the_discriminator_heads_read_the_spread(registry):
    def build(**extra):
        params = {"df": 4, "text_dim": TEXT_DIM, "resolution": 16, "norm": "spectral", **extra}
        return registry.build("discriminator", DiscriminatorSlot(type="stagewise", params=params))

    for kind in ("concat", "projection"):
        D = build(minibatch_std=4, cond_head_kind=kind)
        assert D.feature_channels == build(cond_head_kind=kind).feature_channels + 1
        f = D(torch.randn(8, 3, 16, 16))
        assert f.shape == (8, D.feature_channels, 4, 4)
        c = D.condition(random_text(b=8))
        assert D.uncond_logits(f).shape == D.cond_logits(f, c).shape == (8,)
    # a collapsed batch gets other logits than the same image in a varied batch
    D = build(minibatch_std=4)
    image = torch.randn(1, 3, 16, 16)
    varied = torch.cat([image, torch.randn(7, 3, 16, 16)])
    collapsed = image.expand(8, -1, -1, -1)
    assert not torch.allclose(D.uncond_logits(D(varied))[0], D.uncond_logits(D(collapsed))[0])
    assert not hasattr(build(), "minibatch_std") or build().minibatch_std is None
