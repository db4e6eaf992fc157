"""Conditioning levels: CA with explicit epsilon, tiling, words, mean of words, none."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, T, random_text
from pydantic import ValidationError

from t2i_stages.plugins.conditioning.ca import kl_divergence
from t2i_stages.plugins.discriminators.params import StagewiseDiscriminatorParams
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


def test_word_pool_reads_only_real_words_and_trains(registry):
    pool = _level(registry, "word_pool", heads=3, dim=5)
    d = TEXT_DIM
    assert pool.provides == "vector" and pool.dim == 5 and pool.eps_dim == 0
    assert sum(p.numel() for p in pool.parameters()) == d * d + d + 3 * d + 3 * d * 5 + 5
    text = random_text(b=2, lengths=[7, 3])
    out = pool(text).vector
    assert out.shape == (2, 5)
    # padding takes no part: change the padded word features of caption 1, same condition
    words = text.words.clone()
    words[1, :, 3:] = torch.randn(d, 4) * 100
    torch.testing.assert_close(pool(text._replace(words=words)).vector, out, rtol=0, atol=0)
    # a real word does: change caption 1's second word
    words[1, :, 1] += 1.0
    assert not torch.allclose(pool(text._replace(words=words)).vector[1], out[1])
    # a caption without words gives the output map of zeros, finite
    empty = pool(random_text(b=1, lengths=[0])).vector
    torch.testing.assert_close(empty[0], pool.out.bias, rtol=0, atol=0)
    # its weights learn through the owner's loss
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pool.parameters())


def _cond_d(registry, **params):
    """A 16-px stagewise D with only its conditional head; ``params`` override the defaults."""
    from t2i_stages.recipe import DiscriminatorSlot

    base = {"df": 4, "text_dim": TEXT_DIM, "resolution": 16, "norm": "spectral"}
    slot = DiscriminatorSlot(type="stagewise", params={**base, "uncond_head": False, **params})
    return registry.build("discriminator", slot)


def test_word_pool_is_a_conditional_d_head(registry):
    D = _cond_d(registry, conditioning={"type": "word_pool", "params": {"heads": 2}})
    text = random_text(b=2)
    logits = D.cond_logits(D(torch.randn(2, 3, 16, 16)), D.condition(text))
    assert logits.shape == (2,)
    assert any(p is D.conditioning.queries for p in D.parameters())  # its optimizer reaches it


def test_projection_head_is_a_linear_logit_plus_an_inner_product(registry):
    D = _cond_d(registry, cond_head_kind="projection")
    assert D.cond_joint is None and isinstance(D.cond_out, torch.nn.Linear)
    text = random_text(b=3)
    f = D(torch.randn(3, 3, 16, 16))
    c = D.condition(text)
    phi = f.sum(dim=(2, 3))
    expected = (
        phi @ D.cond_out.weight[0] + D.cond_out.bias + ((c @ D.cond_embed.weight.T) * phi).sum(1)
    )
    torch.testing.assert_close(D.cond_logits(f, c), expected)
    D.cond_logits(f, c).sum().backward()
    assert D.cond_embed.weight.grad.abs().sum() > 0
    # the reference head stays the default
    default = _cond_d(registry)
    assert default.cond_embed is None and default.cond_joint is not None


def test_projection_norm_spectral_bounds_the_text_term(registry):
    D = _cond_d(registry, cond_head_kind="projection", projection_norm="spectral")
    text = random_text(b=4)
    for _ in range(30):  # training-mode forwards advance the power iteration
        D.cond_logits(D(torch.randn(4, 3, 16, 16)), D.condition(text))
    for layer in (D.cond_embed, D.cond_out):
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(
            1.0, rel=0.02
        )
    plain = _cond_d(registry, cond_head_kind="projection")
    assert not hasattr(plain.cond_embed, "parametrizations")
    with pytest.raises(ValidationError, match="projection_norm needs cond_head_kind"):
        StagewiseDiscriminatorParams(norm="spectral", projection_norm="spectral")


def _word_head_d(registry, **extra):
    params = {"cond_head_kind": "words", "conditioning": {"type": "words"}, **extra}
    return _cond_d(registry, **params)


def test_word_head_gives_one_logit_per_real_word(registry):
    D = _word_head_d(registry)
    text = random_text(b=3, lengths=[7, 3, 5])
    f = D(torch.randn(3, 3, 16, 16))
    c = D.condition(text)
    assert c.shape == (3, T, TEXT_DIM + 1) and torch.equal(c[..., -1] > 0.5, text.mask)
    logits = D.cond_logits(f, c)
    assert logits.shape == (15,)
    # each logit belongs to its own word: change caption 1's second word, only it moves
    words = text.words.clone()
    words[1, :, 1] += 1.0
    moved = D.cond_logits(f, D.condition(text._replace(words=words))) != logits
    assert moved.tolist() == [False] * 7 + [False, True, False] + [False] * 5
    # padding plays no part, and the mismatched pairs slice the condition like a vector
    changed = D.cond_logits(f, D.condition(text._replace(words=words)))
    words[1, :, 3:] = 100.0
    torch.testing.assert_close(
        D.cond_logits(f, D.condition(text._replace(words=words))), changed, rtol=0, atol=0
    )
    assert D.cond_logits(f[:-1], c[1:]).shape == (8,)
    D.cond_logits(f, c).sum().backward()
    assert all(p.grad is not None for p in D.word_head.parameters())


def test_word_head_needs_the_word_sequence(registry):
    import pytest

    from t2i_stages.plugin import PluginError

    with pytest.raises(PluginError, match="cond_head_kind 'words'.*'sentence'"):
        _word_head_d(registry, conditioning={"type": "sentence"})
    with pytest.raises(PluginError, match="needs a vector"):
        _word_head_d(registry, cond_head_kind="concat")


def test_token_embedding_is_a_bag_of_learned_word_vectors(registry):
    import pytest

    from t2i_stages.plugin import PluginError

    emb = _level(registry, "token_embedding", dim=6, buckets=50)
    assert emb.provides == "vector" and emb.dim == 6
    assert sum(p.numel() for p in emb.parameters()) == 50 * 6 + 6 * 6 + 6
    text = random_text(b=2, lengths=[3, 2])
    tokens = torch.tensor([[4, 7, 9, 0, 0, 0, 0], [7, 104, 0, 0, 0, 0, 0]])
    out = emb(text._replace(tokens=tokens)).vector
    e = emb.embedding.weight
    expected = torch.stack([(e[4] + e[7] + e[9]) / 3, (e[7] + e[104 % 50]) / 2]) @ emb.out.weight.T
    torch.testing.assert_close(out, expected + emb.out.bias)
    # the frozen features play no part; the order of the words plays none either
    other = random_text(b=2, lengths=[3, 2], seed=1)._replace(
        tokens=tokens[:, [1, 0, 2, 3, 4, 5, 6]]
    )
    torch.testing.assert_close(emb(other).vector, out)
    with pytest.raises(PluginError, match="token_embedding.*no token ids"):
        emb(text)


def test_token_words_add_each_real_words_own_vector_to_the_frozen_words(registry):
    from t2i_stages.plugin import PluginError

    level = _level(registry, "token_words", buckets=50)
    assert level.provides == "sequence" and level.dim == TEXT_DIM
    assert (
        sum(p.numel() for p in level.parameters()) == 50 * TEXT_DIM + TEXT_DIM * TEXT_DIM + TEXT_DIM
    )
    text = random_text(b=2, lengths=[3, 2])
    tokens = torch.tensor([[4, 7, 9, 0, 0, 0, 0], [7, 104, 0, 0, 0, 0, 0]])
    # zero_init: the stage starts exactly as with the frozen words
    start = level(text._replace(tokens=tokens))
    torch.testing.assert_close(start.words, text.words)
    assert torch.equal(start.mask, text.mask)
    torch.nn.init.normal_(level.out.weight)
    out = level(text._replace(tokens=tokens)).words
    e, w, bias = level.embedding.weight, level.out.weight, level.out.bias
    torch.testing.assert_close(out[0, :, 1], text.words[0, :, 1] + e[7] @ w.T + bias)
    torch.testing.assert_close(out[1, :, 1], text.words[1, :, 1] + e[104 % 50] @ w.T + bias)
    # padding positions get nothing added; a word is the same vector wherever it stands
    torch.testing.assert_close(out[0, :, 3:], text.words[0, :, 3:])
    torch.testing.assert_close(
        out[1, :, 0] - text.words[1, :, 0], out[0, :, 1] - text.words[0, :, 1]
    )
    with pytest.raises(PluginError, match="token_words.*no token ids"):
        level(text)
    with pytest.raises(PluginError, match="token_words.*do not line up"):
        level(text._replace(tokens=tokens[:, :5]))
    shifted = _level(registry, "token_words", shift_mask=True)(text._replace(tokens=tokens))
    assert shifted.mask[1].tolist() == [True, True, True] + [False] * (T - 3)


def test_training_hands_the_discriminators_the_token_ids():
    from t2i_stages.training.step import GanStep

    class Encoder:
        def encode_text(self, tokens, mask):
            return random_text(b=tokens.shape[0])

    step = GanStep.__new__(GanStep)
    step.text_encoder, step.text_cache = Encoder(), None
    tokens = torch.tensor([[3, 4, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0]])
    text = step.train_text({"tokens": tokens, "mask": tokens > 0})
    assert torch.equal(text.tokens, tokens)
