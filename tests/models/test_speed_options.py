"""Issue 22's model-side speed options: the batched spectral-norm power iteration (bit for bit
on the CPU), the fused attention of the fusion blocks (float-rounding close, maps in eval) and
the channels-last helper."""

from __future__ import annotations

import copy

import pytest
import torch
from model_helpers import TEXT_DIM, random_text
from pydantic import ValidationError

from t2i_stages.plugin import Condition
from t2i_stages.plugins.common.layers import follow_memory_format, is_channels_last
from t2i_stages.plugins.discriminators.params import StagewiseDiscriminatorParams
from t2i_stages.recipe import DiscriminatorSlot, FusionSlot

# ---------------------------------------------------------------- batched power iteration


def _d(registry, spectral_norm, batched=False, resolution=128):
    slot = DiscriminatorSlot(
        type="stagewise",
        params={
            "df": 4,
            "text_dim": TEXT_DIM,
            "norm": "spectral",
            "spectral_norm": spectral_norm,
            "batched_power_iteration": batched,
        },
    )
    return registry.build("discriminator", slot, resolution=resolution, stage=0)


@pytest.mark.parametrize("spectral_norm", ["torch", "reference"])
def test_batched_power_iteration_is_the_per_weight_one_bit_for_bit(registry, spectral_norm):
    torch.manual_seed(0)
    plain = _d(registry, spectral_norm)
    batched = copy.deepcopy(plain)
    from t2i_stages.plugins.discriminators.spectral import batch_power_iterations

    assert batch_power_iterations(batched.trunk) == 6  # 128 px: 5 down convs + one 3x3 block
    built = _d(registry, spectral_norm, batched=True)  # the param does the same
    assert built.state_dict().keys() == plain.state_dict().keys()
    x, y = torch.randn(2, 3, 128, 128), torch.randn(2, 3, 128, 128)
    cond = torch.randn(2, TEXT_DIM)
    for mode in (True, True, False, True):  # u, v advance in training (and in eval: reference)
        plain.train(mode), batched.train(mode)
        outs = []
        for d in (plain, batched):
            fx, fy = d(x), d(y)  # two forwards per step, as a D update does
            loss = d.cond_logits(fx, cond).sum() - d.uncond_logits(fy).sum()
            grads = torch.autograd.grad(loss, list(d.parameters()))
            outs.append((fx, fy, grads))
        for a, b in zip(outs[0][:2], outs[1][:2], strict=True):
            assert torch.equal(a, b)
        for ga, gb in zip(outs[0][2], outs[1][2], strict=True):
            assert torch.equal(ga, gb)
    sa, sb = plain.state_dict(), batched.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # u and v included


def test_batched_power_iteration_trains_under_torch_compile(registry):
    """The step's u and v reach sigma directly, not through the just-mutated buffers, which
    compiled backward passes refuse."""
    torch.manual_seed(0)
    d = torch.compile(_d(registry, "torch", batched=True, resolution=32))
    x, y = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    for _ in range(2):
        (d(x).sum() - d(y).sum()).backward()


def test_batched_power_iteration_needs_spectral_norm():
    with pytest.raises(ValidationError, match="batched_power_iteration needs norm: spectral"):
        StagewiseDiscriminatorParams(norm="batch", batched_power_iteration=True)


# ---------------------------------------------------------------- fused attention

C, H = 6, 5


def _pair(registry, name, **params):
    blocks = [
        registry.build(
            "fusion",
            FusionSlot(type=name, params={**params, "sdpa": sdpa}),
            channels=C,
            text_dim=TEXT_DIM,
        )
        for sdpa in (False, True)
    ]
    blocks[1].load_state_dict(blocks[0].state_dict())
    return blocks


@pytest.mark.parametrize("name", ["word_attention", "dynamic_memory"])
@pytest.mark.parametrize("reference_mask_layout", [False, True])
def test_fused_attention_matches_the_explicit_path(registry, name, reference_mask_layout):
    explicit, fused = _pair(registry, name, reference_mask_layout=reference_mask_layout)
    text = random_text(b=3, lengths=[7, 3, 0])  # a fully padded caption too
    cond = Condition(words=text.words, mask=text.mask)
    h = torch.randn(3, C, H, H)
    results = []
    for block in (explicit, fused):
        block.train()
        x = h.clone().requires_grad_(True)
        out, att = block(x, cond)
        out.backward(torch.ones_like(out))
        results.append((out, att, x.grad, [p.grad for p in block.parameters()]))
    (out_e, att_e, gx_e, gp_e), (out_f, att_f, gx_f, gp_f) = results
    assert att_e is not None and att_f is None  # no map in training with sdpa
    torch.testing.assert_close(out_f, out_e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_f, gx_e, rtol=1e-5, atol=1e-5)
    for a, b in zip(gp_f, gp_e, strict=True):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the fully padded caption reads nothing on both paths
    if name == "word_attention" and not reference_mask_layout:
        assert torch.all(out_f[2, C:] == 0)


@pytest.mark.parametrize("name", ["word_attention", "dynamic_memory"])
def test_fused_attention_returns_the_maps_in_eval_mode(registry, name):
    explicit, fused = _pair(registry, name)
    text = random_text(b=2, lengths=[7, 4])
    cond = Condition(words=text.words, mask=text.mask)
    h = torch.randn(2, C, H, H)
    explicit.eval(), fused.eval()
    out_e, att_e = explicit(h, cond)
    out_f, att_f = fused(h, cond)
    assert torch.equal(out_e, out_f) and torch.equal(att_e, att_f)  # the same explicit path


# ---------------------------------------------------------------- channels-last helper


def test_follow_memory_format_only_acts_under_channels_last():
    plain = torch.randn(2, 4, 3, 3)
    cl = plain.contiguous(memory_format=torch.channels_last)
    assert follow_memory_format(plain, plain) is plain  # the default layout: untouched
    moved = follow_memory_format(plain, cl)
    assert is_channels_last(moved) and torch.equal(moved, plain)
    assert follow_memory_format(cl, cl) is cl
    one_by_one = torch.randn(2, 4, 1, 1)  # both layouts at once: never taken as channels-last
    assert not is_channels_last(one_by_one)
    assert follow_memory_format(plain, one_by_one) is plain
