"""Matching losses (§6.1): known answers, both directions, class masking, word masks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from t2i_stages.plugins.losses.matching import (
    SentenceMatchingLoss,
    SentenceMatchingParams,
    WordRegionMatchingLoss,
    WordRegionMatchingParams,
    sentence_loss,
    word_region_loss,
    word_region_scores,
)
from t2i_stages.recipe.slots import LossSlot
from t2i_stages.registry import load_registry
from t2i_stages.types import ImageFeatures, TextFeatures


def _text(words: torch.Tensor, sentence: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
    return TextFeatures(words, sentence, mask, mask.sum(1))


def _reference_words_loss(regions, words, lengths, class_ids, g1, g2, g3):
    """The AttnGAN/DM-GAN loop (one caption at a time, sliced to its length)."""
    b = words.shape[0]
    sims = []
    for i in range(b):
        w = words[i : i + 1, :, : lengths[i]].repeat(b, 1, 1)
        attn = torch.bmm(regions.transpose(1, 2), w).softmax(-1)  # over words
        attn = (g1 * attn.transpose(1, 2)).softmax(-1)  # over regions
        ctx = torch.bmm(regions, attn.transpose(1, 2))
        cos = F.cosine_similarity(w, ctx, dim=1, eps=1e-8)
        sims.append(torch.log(torch.exp(g2 * cos).sum(1, keepdim=True)))
    sim = torch.cat(sims, 1) * g3
    if class_ids is not None:
        m = (class_ids[:, None] == class_ids[None, :]) & ~torch.eye(b, dtype=torch.bool)
        sim = sim.masked_fill(m, -math.inf)
    labels = torch.arange(b)
    return F.cross_entropy(sim, labels), F.cross_entropy(sim.t(), labels)


def test_word_loss_equals_reference_loop():
    torch.manual_seed(0)
    b, d, t, r = 5, 8, 7, 9
    regions, words = torch.randn(b, d, r), torch.randn(b, d, t)
    lengths = torch.tensor([7, 3, 1, 5, 2])
    mask = torch.arange(t)[None] < lengths[:, None]
    ids = torch.tensor([0, 1, 0, 2, 1])
    for class_ids in (None, ids):
        ours = word_region_loss(regions, words, mask, class_ids, 4.0, 5.0, 10.0)
        ref = _reference_words_loss(regions, words, lengths, class_ids, 4.0, 5.0, 10.0)
        torch.testing.assert_close(torch.stack(ours), torch.stack(ref), rtol=1e-5, atol=1e-5)


def test_sentence_loss_known_values_and_swaps():
    b = 4
    # identical, orthogonal features: the diagonal wins by γ3 -> lowest loss
    feats = torch.eye(b, 6)[:b] * 3.0
    s0, s1 = sentence_loss(feats, feats, gamma3=10.0)
    expected = -math.log(math.exp(10) / (math.exp(10) + (b - 1)))
    assert s0.item() == pytest.approx(expected, abs=1e-6)
    assert s1.item() == pytest.approx(expected, abs=1e-6)
    swapped = feats[[1, 0, 2, 3]]
    w0, w1 = sentence_loss(feats, swapped, gamma3=10.0)
    assert w0 > s0 + 4 and w1 > s1 + 4  # two of four pairs now lose by ~γ3
    # all image codes equal: for each caption every image is equally likely -> S1 = log B
    same = torch.ones(b, 6)
    _, u1 = sentence_loss(same, torch.randn(b, 6), gamma3=10.0)
    assert u1.item() == pytest.approx(math.log(b), rel=1e-5)


def test_word_loss_identical_features_lowest_and_swap_raises():
    torch.manual_seed(1)
    b, d, t = 4, 16, 5
    words = torch.randn(b, d, t)
    mask = torch.ones(b, t, dtype=torch.bool)
    regions = words.clone()  # every word has an identical region in its own image
    m0, m1 = word_region_loss(regions, words, mask)
    perm = [2, 3, 0, 1]
    x0, x1 = word_region_loss(regions, words[perm], mask)
    assert m0 < x0 and m1 < x1
    scores = word_region_scores(regions, words, mask)
    assert torch.equal(scores.argmax(1), torch.arange(b))  # each image prefers its own caption


def test_directions_are_separate_and_selectable():
    torch.manual_seed(2)
    img = ImageFeatures(torch.randn(3, 8, 4), torch.randn(3, 8))
    text = _text(torch.randn(3, 8, 5), torch.randn(3, 8), torch.ones(3, 5, dtype=torch.bool))
    for cls, pcls in (
        (SentenceMatchingLoss, SentenceMatchingParams),
        (WordRegionMatchingLoss, WordRegionMatchingParams),
    ):
        both = cls(pcls())
        terms = both.terms(img, text)
        assert not torch.isclose(terms["image_to_text"], terms["text_to_image"])
        torch.testing.assert_close(both(img, text), terms["image_to_text"] + terms["text_to_image"])
        one = cls(pcls(directions=["text_to_image"]))
        torch.testing.assert_close(one(img, text), terms["text_to_image"])
        with pytest.raises(ValidationError):
            pcls(directions=["sideways"])
        with pytest.raises(ValidationError):
            pcls(directions=[])


def test_class_masking():
    torch.manual_seed(3)
    b = 4
    code, sent = torch.randn(b, 8), torch.randn(b, 8)
    # everyone in one class: only the diagonal survives -> zero loss
    z0, z1 = sentence_loss(code, sent, torch.zeros(b, dtype=torch.long))
    assert z0.item() == pytest.approx(0.0, abs=1e-6) and z1.item() == pytest.approx(0.0, abs=1e-6)
    # distinct classes, or -1 (= no class), mask nothing
    plain = sentence_loss(code, sent, None)
    torch.testing.assert_close(sentence_loss(code, sent, torch.arange(b)), plain)
    torch.testing.assert_close(sentence_loss(code, sent, torch.full((b,), -1)), plain)
    # one same-class pair: equals CE over the logits with that pair removed
    ids = torch.tensor([0, 1, 0, 2])
    logits = 10.0 * F.normalize(code, dim=1) @ F.normalize(sent, dim=1).t()
    keep = ~((ids[:, None] == ids[None, :]) & ~torch.eye(b, dtype=torch.bool))
    ref0 = torch.stack([-(logits[i, i] - logits[i][keep[i]].logsumexp(0)) for i in range(b)]).mean()
    m0, _ = sentence_loss(code, sent, ids)
    assert m0.item() == pytest.approx(ref0.item(), rel=1e-5)
    # the plugin's switch turns masking off
    img = ImageFeatures(torch.randn(b, 8, 3), code)
    text = _text(torch.randn(b, 8, 4), sent, torch.ones(b, 4, dtype=torch.bool))
    on = SentenceMatchingLoss(SentenceMatchingParams())(img, text, torch.zeros(b, dtype=torch.long))
    off = SentenceMatchingLoss(SentenceMatchingParams(class_masking=False))(
        img, text, torch.zeros(b, dtype=torch.long)
    )
    assert on.item() == pytest.approx(0.0, abs=1e-6) and off.item() > 0.1
    with pytest.raises(ValueError, match="class_ids"):
        sentence_loss(code, sent, torch.zeros(b + 1))


def test_word_mask_ignores_padding_and_handles_empty_captions():
    torch.manual_seed(4)
    b, d, t, r = 3, 8, 6, 5
    regions, words = torch.randn(b, d, r), torch.randn(b, d, t)
    mask = torch.tensor(
        [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool
    )
    base = word_region_loss(regions, words, mask)
    noisy = words.clone()
    noisy[~mask[:, None, :].expand_as(noisy)] = 1e3 * torch.randn(int((~mask).sum()) * d)
    torch.testing.assert_close(word_region_loss(regions, noisy, mask), base)
    # a caption with no real word: finite loss, score 0 against every image
    empty = mask.clone()
    empty[2] = False
    out = word_region_loss(regions, words, empty)
    assert all(torch.isfinite(v) for v in out)
    assert torch.equal(word_region_scores(regions, words, empty)[:, 2], torch.zeros(b))
    # region grids may come as (B, D, h, w)
    torch.testing.assert_close(word_region_loss(regions.reshape(b, d, 5, 1), words, mask), base)


def test_losses_are_registered_with_paper_defaults_and_differentiable():
    reg = load_registry()
    word = reg.build("loss", LossSlot(type="word_region_matching", weight=4.0, stages=[2]))
    sent = reg.build("loss", LossSlot(type="sentence_matching"))
    assert (word.params.gamma1, word.params.gamma2, word.params.gamma3) == (4.0, 5.0, 10.0)
    assert sent.params.gamma3 == 10.0
    regions = torch.randn(2, 8, 4, requires_grad=True)
    img = ImageFeatures(regions, torch.randn(2, 8, requires_grad=True))
    text = _text(torch.randn(2, 8, 3), torch.randn(2, 8), torch.ones(2, 3, dtype=torch.bool))
    (word(img, text) + sent(img, text)).backward()
    assert regions.grad is not None and img.code.grad is not None
