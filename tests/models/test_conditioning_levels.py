"""Conditioning levels: CA with explicit epsilon, tiling, words, mean of words, none."""

from __future__ import annotations

import torch
from model_helpers import TEXT_DIM, random_text

from t2i_stages.plugins.conditioning.ca import kl_divergence
from t2i_stages.recipe import ConditioningSlot


def _level(registry, name, **params):
    return registry.build(
        "conditioning", ConditioningSlot(type=name, params=params), text_dim=TEXT_DIM
    )


def test_ca_uses_the_given_epsilon_only(registry):
    ca = _level(registry, "ca", c_dim=5)
    text = random_text()
    eps = torch.randn(2, 5)
    c1, c2 = ca(text, eps), ca(text, eps)
    torch.testing.assert_close(c1.vector, c2.vector)  # nothing random inside
    torch.testing.assert_close(c1.vector, c1.mu + torch.exp(0.5 * c1.logvar) * eps)
    torch.testing.assert_close(ca(text, None).vector, c1.mu)
    assert c1.vector.shape == c1.mu.shape == c1.logvar.shape == (2, 5)
    assert ca.eps_dim == ca.dim == 5 and ca.provides == "vector"
    assert sum(p.numel() for p in ca.parameters()) == TEXT_DIM * 20 + 20


def test_kl_is_a_mean_over_batch_and_entries():
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    expected = (
        sum(
            -0.5 * (1 + logvar[i, j] - mu[i, j] ** 2 - logvar[i, j].exp())
            for i in range(3)
            for j in range(4)
        )
        / 12
    )
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)) == 0


def test_sequence_levels_and_mask_shift(registry):
    text = random_text(b=2, lengths=[7, 3])
    words = _level(registry, "words")(text)
    assert torch.equal(words.words, text.words) and torch.equal(words.mask, text.mask)
    tiled = _level(registry, "sentence_tiled")(text)
    assert tiled.words.shape == text.words.shape
    assert torch.equal(tiled.words[:, :, 4], text.sentence) and torch.equal(tiled.mask, text.mask)
    shifted = _level(registry, "words", shift_mask=True)(text)
    # GR-GAN: position 0 always real, then the correct mask lagging by one
    assert shifted.mask[1].tolist() == [True, True, True, True, False, False, False]
    assert shifted.mask[0].all()


def test_vector_levels(registry):
    text = random_text(b=2, lengths=[7, 2])
    assert torch.equal(_level(registry, "sentence")(text).vector, text.sentence)
    mean = _level(registry, "mean_words")(text).vector
    torch.testing.assert_close(mean, text.words.mean(2))  # reference: padding included
    masked = _level(registry, "mean_words", masked=True)(text).vector
    torch.testing.assert_close(masked[1], text.words[1, :, :2].mean(1))
    empty = _level(registry, "mean_words", masked=True)(random_text(b=1, lengths=[0])).vector
    assert torch.equal(empty, torch.zeros_like(empty))
    none = _level(registry, "none")
    assert none(text) == (None, None, None, None, None) and none.dim == 0
