"""Fusion blocks: attention normalisation, masking, fully padded captions, reference switches."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, random_text

from t2i_stages.plugin import Condition, masked_softmax
from t2i_stages.recipe import FusionSlot

C, H = 6, 5


def _fusion(registry, name, **params):
    return registry.build(
        "fusion", FusionSlot(type=name, params=params), channels=C, text_dim=TEXT_DIM
    )


def _cond(text):
    return Condition(words=text.words, mask=text.mask)


@pytest.mark.parametrize("name", ["word_attention", "dynamic_memory"])
def test_attention_rows_sum_to_one_and_padding_gets_zero(registry, name):
    block = _fusion(registry, name)
    text = random_text(b=3, lengths=[7, 4, 1])
    h = torch.randn(3, C, H, H)
    out, att = block(h, _cond(text))
    assert out.shape == (3, 2 * C, H, H) and block.out_channels == 2 * C
    assert att.shape == (3, 7, H, H)
    per_pixel = att.sum(dim=1)  # over words
    torch.testing.assert_close(per_pixel, torch.ones_like(per_pixel))
    padded = ~text.mask[:, :, None, None].expand_as(att)
    assert torch.all(att[padded] == 0)
    assert torch.all(att[~padded] > 0)


@pytest.mark.parametrize("name", ["word_attention", "dynamic_memory"])
def test_fully_padded_caption_is_finite(registry, name):
    block = _fusion(registry, name)
    text = random_text(b=2, lengths=[0, 3])
    h = torch.randn(2, C, H, H, requires_grad=True)
    out, att = block(h, _cond(text))
    assert torch.isfinite(out).all() and torch.isfinite(att).all()
    assert torch.all(att[0] == 0)  # nothing to read
    out.sum().backward()
    assert torch.isfinite(h.grad).all()


def test_word_attention_matches_definition(registry):
    block = _fusion(registry, "word_attention")
    text = random_text(b=2, lengths=[7, 5])
    h = torch.randn(2, C, H, H)
    out, att = block(h, _cond(text))
    proj = torch.einsum("oc,bct->bot", block.project.weight[:, :, 0, 0], text.words)
    for b in range(2):
        n = int(text.lengths[b])
        q = h[b].reshape(C, -1).T  # (N, C)
        w = torch.softmax(q @ proj[b, :, :n], dim=1)  # (N, n)
        ctx = (proj[b, :, :n] @ w.T).reshape(C, H, H)
        torch.testing.assert_close(out[b, :C], h[b])
        torch.testing.assert_close(out[b, C:], ctx, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(att[b, :n].reshape(n, -1).T, w, rtol=1e-4, atol=1e-6)


def test_dynamic_memory_switches(registry):
    text = random_text(b=2, lengths=[7, 3])
    h = torch.randn(2, C, H, H, requires_grad=True)
    ref = _fusion(registry, "dynamic_memory")
    out, _ = ref(h, _cond(text))
    # reference duplicates h' before the residual blocks
    torch.testing.assert_close(out[:, :C], out[:, C:])
    alt = _fusion(registry, "dynamic_memory", duplicate_response=False)
    alt.load_state_dict(ref.state_dict())
    out2, _ = alt(h, _cond(text))
    torch.testing.assert_close(out2[:, :C], out[:, :C])
    assert not torch.allclose(out2[:, C:], out2[:, :C])
    # detach_global: no gradient reaches h through the pooled global feature
    g_ref = torch.autograd.grad(ref(h, _cond(text)).features.sum(), h)[0]
    nodetach = _fusion(registry, "dynamic_memory", detach_global=False)
    nodetach.load_state_dict(ref.state_dict())
    g_full = torch.autograd.grad(nodetach(h, _cond(text)).features.sum(), h)[0]
    assert not torch.allclose(g_ref, g_full)


def test_sentence_tiled_memory_reads_uniformly(registry):
    # GR-GAN stage 2: identical slots -> uniform addressing over the real words.
    block = _fusion(registry, "dynamic_memory")
    text = random_text(b=2, lengths=[7, 4])
    words = text.sentence[:, :, None].expand(-1, -1, 7)
    _, att = block(torch.randn(2, C, H, H), Condition(words=words, mask=text.mask))
    torch.testing.assert_close(att[1, :4], torch.full_like(att[1, :4], 0.25))
    torch.testing.assert_close(att[0], torch.full_like(att[0], 1 / 7))


def test_reference_mask_layout_reproduces_the_repeat_quirk(registry):
    block = _fusion(registry, "word_attention", reference_mask_layout=True)
    text = random_text(b=2, lengths=[7, 2])
    _, att = block(torch.randn(2, C, H, H), _cond(text))
    # pixel q of sample b gets the mask of sample (b*N + q) % B: sample 1 sees sample 0's mask
    # on half of its pixels, so padded words of sample 1 get weight there.
    assert att[1, 2:].sum() > 0
    torch.testing.assert_close(att.sum(1), torch.ones(2, H, H))


def test_affine_fusion_starts_as_identity_plus_leaky_relu(registry):
    block = registry.build("fusion", FusionSlot(type="affine"), channels=C, text_dim=TEXT_DIM)
    assert block.requires == "vector" and block.out_channels == C
    h = torch.randn(2, C, H, H)
    y = torch.randn(2, TEXT_DIM)
    out, att = block(h, Condition(vector=y))
    lrelu = torch.nn.functional.leaky_relu
    torch.testing.assert_close(out, lrelu(lrelu(h, 0.2), 0.2))
    assert att is None
    # per-channel MLPs: 2 affines x (gamma, beta) x (Linear(y, C) + Linear(C, C))
    assert sum(p.numel() for p in block.parameters()) == 4 * (TEXT_DIM * C + C + C * C + C)


def test_masked_softmax_uses_finite_fill():
    scores = torch.randn(2, 3, 4)
    mask = torch.zeros(2, 1, 4, dtype=torch.bool)
    out = masked_softmax(scores, mask)
    assert torch.isfinite(out).all() and torch.all(out == 0)
    half = masked_softmax(scores.half(), mask.clone().fill_(True))
    assert half.dtype == torch.float16
