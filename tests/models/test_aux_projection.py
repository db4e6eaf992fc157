"""The stagewise discriminator's aux_projection: the reference head plus a zero-initialised
projection term from a second conditioning level (the D's own word embedding)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TEXT_DIM, T, random_text
from pydantic import ValidationError

from t2i_stages.plugin import PluginError
from t2i_stages.recipe import DiscriminatorSlot


def _text(b: int = 6, seed: int = 0):
    text = random_text(b=b, seed=seed)
    ids = torch.randint(1, 50, (b, T), generator=torch.Generator().manual_seed(seed))
    return text._replace(tokens=ids * text.mask)


def _build(registry, **extra):
    params = {
        "df": 4, "text_dim": TEXT_DIM, "resolution": 16, "norm": "spectral",
        "uncond_head": False, "conditioning": {"type": "mean_words"}, **extra,
    }  # fmt: skip
    return registry.build("discriminator", DiscriminatorSlot(type="stagewise", params=params))


@pytest.mark.parametrize("kind", ["concat", "projection"])
def test_it_starts_as_the_head_alone_and_learns_from_the_token_ids(registry, kind):
    torch.manual_seed(0)
    plain = _build(registry, cond_head_kind=kind)
    torch.manual_seed(0)
    aux = _build(registry, cond_head_kind=kind, aux_projection={"type": "token_embedding"})
    missing = set(aux.state_dict()) - set(plain.state_dict())
    assert missing and all(k.startswith(("aux_conditioning.", "aux_embed.")) for k in missing)
    plain.load_state_dict({k: v for k, v in aux.state_dict().items() if k not in missing})
    images, text = torch.randn(6, 3, 16, 16), _text()
    f = aux(images)
    c = aux.condition(text)
    assert c.shape == (6, TEXT_DIM + TEXT_DIM)  # the head's vector, then the aux vector
    torch.testing.assert_close(c[:, :TEXT_DIM], plain.condition(text))
    torch.testing.assert_close(
        aux.cond_logits(f, c), plain.cond_logits(plain(images), c[:, :TEXT_DIM])
    )

    aux.cond_logits(f, c).sum().backward()  # V gets a gradient first, then the embedding
    assert aux.aux_embed.weight.grad.abs().sum() > 0
    with torch.no_grad():
        aux.aux_embed.weight.normal_()
    other = _text(seed=1)
    changed = text._replace(tokens=other.tokens)  # the same frozen features, other words
    f = aux(images)
    assert not torch.allclose(aux.cond_logits(f, aux.condition(text)),
                              aux.cond_logits(f, aux.condition(changed)))  # fmt: skip


def test_the_aux_term_stays_zero_under_the_reference_init(registry):
    D = _build(registry, init="orthogonal", aux_projection={"type": "token_embedding"})
    assert torch.count_nonzero(D.aux_embed.weight) == 0


def test_bad_aux_levels_are_refused(registry):
    with pytest.raises(PluginError, match="aux_projection 'words' must give a vector"):
        _build(registry, aux_projection={"type": "words"})
    with pytest.raises(ValidationError, match="aux_projection adds to a concat or projection"):
        _build(registry, cond_head=False, uncond_head=True, aux_projection={"type": "sentence"})
