"""Generators and discriminators end to end on tiny configurations (16 -> 32 -> 64 px)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import (
    C_DIM,
    TEXT_DIM,
    Z_DIM,
    T,
    random_text,
    tiny_discriminators,
    tiny_generator,
)

KINDS = ["attngan", "dmgan", "grgan", "dfgan"]


def _inputs(g, b=2, lengths=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(b, g.z_dim, generator=gen)
    eps = torch.randn(b, g.eps_dim, generator=gen) if g.eps_dim else None
    return z, eps, random_text(b=b, lengths=lengths, seed=seed)


@torch.no_grad()
def _perturb(module: torch.nn.Module, seed: int = 1) -> None:
    # Zero-initialised pieces (DF-GAN's gamma and affine output layers) would block gradients
    # to what precedes them at init; a small perturbation makes every path live.
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("kind", KINDS)
def test_stage_shapes_and_contract(registry, kind):
    g = registry.build("generator", tiny_generator(kind))
    z, eps, text = _inputs(g, lengths=[T, 3])
    out = g(z, eps, text)
    if kind == "dfgan":
        assert g.resolutions == [32] and g.eps_dim == 0
        assert [tuple(i.shape) for i in out.images] == [(2, 3, 32, 32)]
        assert out.attention == [] and out.mu is None and out.logvar is None
    else:
        assert g.resolutions == [16, 32, 64] and g.z_dim == Z_DIM and g.eps_dim == C_DIM
        assert [tuple(i.shape) for i in out.images] == [(2, 3, r, r) for r in (16, 32, 64)]
        assert [tuple(a.shape) for a in out.attention] == [(2, T, 16, 16), (2, T, 32, 32)]
        assert out.mu.shape == out.logvar.shape == (2, C_DIM)
        feats, h = [], None
        for stage in g.stages:
            h = stage(h, text, z, eps).features
            feats.append(tuple(h.shape))
        assert feats == [(2, 4, 16, 16), (2, 4, 32, 32), (2, 4, 64, 64)]
    for img in out.images:
        assert img.min() >= -1 and img.max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_generator_parameter(registry, kind):
    g = registry.build("generator", tiny_generator(kind))
    _perturb(g)
    # four captions: with two, every unmasked key of a 4-channel ReLU layer can be zero at init
    # (a width the paper-size models never have), and its weights then get no gradient
    z, eps, text = _inputs(g, b=4, lengths=[T, 4, T, 5])
    out = g(z, eps, text)
    gen = torch.Generator().manual_seed(3)
    loss = sum((img * torch.randn(img.shape, generator=gen)).sum() for img in out.images)
    if out.mu is not None:
        loss = loss + out.mu.sum() + out.logvar.sum()
    loss.backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_discriminator_parameter(registry, kind):
    text = random_text(lengths=[T, 2])
    for i, slot in enumerate(tiny_discriminators(kind)):
        res = 32 if kind == "dfgan" else 16 * 2**i
        d = registry.build("discriminator", slot, resolution=res)
        _perturb(d)
        x = torch.randn(2, 3, res, res)
        f = d(x)
        logits = [d.uncond_logits(f), d.cond_logits(f, d.condition(text))]
        used = [t for t in logits if t is not None]
        assert used and all(t.shape == (2,) for t in used)
        assert (logits[0] is not None) == d.has_uncond and (logits[1] is not None) == d.has_cond
        sum(t.sum() for t in used).backward()
        missing = [
            n for n, p in d.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
        ]
        assert missing == [], (kind, i)


def test_unused_parameters_are_exactly_the_documented_ones(registry):
    # GR-GAN's D64 builds a conditional head it never uses; DF-GAN's D builds 1x1 shortcuts
    # it never uses where channels do not change. Only those get no gradient.
    from t2i_stages.recipe import DiscriminatorSlot

    d = registry.build(
        "discriminator",
        DiscriminatorSlot(
            type="stagewise",
            params={
                "df": 4,
                "text_dim": TEXT_DIM,
                "norm": "spectral",
                "conditioning": {"type": "none"},
            },
        ),
        resolution=16,
    )
    assert (
        d.cond_logits(d(torch.randn(2, 3, 16, 16)), None) is None
        and d.condition(random_text()) is None
    )
    d.uncond_logits(d(torch.randn(2, 3, 16, 16))).sum().backward()
    assert {n.split(".")[0] for n, p in d.named_parameters() if p.grad is None} == {
        "cond_joint",
        "cond_out",
    }
    d = registry.build(
        "discriminator",
        DiscriminatorSlot(type="dfgan", params={"nf": 2, "text_dim": TEXT_DIM}),
        resolution=64,
    )
    _perturb(d)
    d.cond_logits(d(torch.randn(2, 3, 64, 64)), d.condition(random_text())).sum().backward()
    unused = {n for n, p in d.named_parameters() if p.grad is None}
    assert unused == {"blocks.3.shortcut.weight", "blocks.3.shortcut.bias"}  # 16 -> 16 channels


@pytest.mark.parametrize("kind", KINDS)
def test_eval_mode_is_deterministic(registry, kind):
    g = registry.build("generator", tiny_generator(kind)).eval()
    z, eps, text = _inputs(g, lengths=[T, 2])
    with torch.no_grad():
        a, b = g(z, eps, text), g(z, eps, text)
    for x, y in zip(a.images, b.images, strict=True):
        assert torch.equal(x, y)
    if kind != "dfgan":
        with torch.no_grad():
            other = g(z, torch.randn_like(eps), text)
        assert not torch.equal(other.images[-1], a.images[-1])  # eps really is used


@pytest.mark.parametrize("kind", KINDS)
def test_fully_padded_caption_gives_finite_outputs(registry, kind):
    g = registry.build("generator", tiny_generator(kind))
    z, eps, text = _inputs(g, lengths=[0, 0])
    out = g(z, eps, text)
    assert all(torch.isfinite(i).all() for i in out.images)
    assert all(torch.isfinite(a).all() for a in out.attention)
    for i, slot in enumerate(tiny_discriminators(kind)):
        d = registry.build("discriminator", slot, resolution=out.images[i].shape[-1])
        f = d(out.images[i])
        c = d.condition(text)
        for t in (d.uncond_logits(f), d.cond_logits(f, c)):
            assert t is None or torch.isfinite(t).all()


def test_discriminator_trunks_end_at_4x4_with_8df(registry):
    from t2i_stages.recipe import DiscriminatorSlot

    for res, nconv in ((64, 4), (128, 6), (256, 8)):
        d = registry.build(
            "discriminator", DiscriminatorSlot(type="stagewise", params={"df": 2}), resolution=res
        )
        f = d(torch.randn(1, 3, res, res))
        assert f.shape == (1, 16, 4, 4) and d.resolution == res
        assert sum(isinstance(m, torch.nn.Conv2d) for m in d.trunk.modules()) == nconv


def test_reference_init(registry):
    g = registry.build("generator", tiny_generator("dmgan"))
    w = g.stages[0].fc[0].weight  # Linear (out, in) with out > in: orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(w.shape[1]), atol=1e-5, rtol=0)
    bn = g.stages[0].fc[1]
    assert 0.9 < bn.weight.mean() < 1.1 and bn.weight.std() < 0.05 and torch.all(bn.bias == 0)
    from t2i_stages.recipe import GeneratorSlot

    slot = tiny_generator("dmgan").model_dump()
    slot["params"]["init"] = "pytorch"
    plain = registry.build("generator", GeneratorSlot.model_validate(slot))
    assert torch.all(plain.stages[0].fc[1].weight == 1)  # torch's BatchNorm default


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_autocast_with_padded_captions_stays_finite(registry, kind):
    g = registry.build("generator", tiny_generator(kind))
    z, eps, text = _inputs(g, lengths=[T, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(z, eps, text)
    assert all(torch.isfinite(i.float()).all() for i in out.images)


def test_wrong_eps_size_is_refused(registry):
    g = registry.build("generator", tiny_generator("attngan"))
    z, eps, text = _inputs(g)
    with pytest.raises(ValueError, match="eps has 3 columns; this generator takes 6"):
        g(z, eps[:, :3], text)
