"""Matchers: shapes of both sides, frozen/trainable parts, offline errors for absent weights."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.assets import MissingAssetError
from t2i_stages.recipe.slots import MatcherSlot
from t2i_stages.registry import load_registry
from t2i_stages.text import WordVocab

TINY_ITM = {
    "scratch": {
        "text_width": 32, "text_layers": 1, "text_heads": 2, "vision_width": 32, "vision_layers": 1,
        "vision_heads": 2, "image_size": 32, "patch_size": 8, "projection_dim": 24, "max_words": 10,
    }
}  # fmt: skip


@pytest.fixture(scope="module")
def reg():
    return load_registry()


def _batch(b=3, t=7, size=48):
    tokens = torch.randint(1, 20, (b, t))
    mask = torch.arange(t)[None] < torch.tensor([t, 3, 1][:b])[:, None]
    return torch.rand(b, 3, size, size) * 2 - 1, tokens, mask


def test_damsm_small_cnn_shapes_and_params(reg):
    m = reg.build(
        "matcher",
        MatcherSlot(type="damsm", params={"text_dim": 64, "small_cnn": {"image_size": 32}}),
        vocab_size=20,
    )
    images, tokens, mask = _batch(size=50)  # any input size: resized inside
    img, text = m(images, tokens, mask)
    assert img.regions.shape == (3, 64, 16) and img.code.shape == (3, 64)  # 32/8 = 4x4 regions
    assert text.words.shape == (3, 64, 7) and text.sentence.shape == (3, 64) and m.text_dim == 64
    assert all(p.requires_grad for p in m.parameters())
    assert not m.trained


def test_itm_from_scratch_shapes(reg):
    m = reg.build("matcher", MatcherSlot(type="itm", params=TINY_ITM), vocab_size=20)
    images, tokens, mask = _batch()
    img, text = m(images, tokens, mask)
    assert img.regions.shape == (3, 24, 16) and img.code.shape == (3, 24)  # (32/8)^2 patches
    assert text.words.shape == (3, 24, 7) and torch.equal(text.mask, mask)
    assert torch.all(text.words[1, :, 3:] == 0)
    assert all(p.requires_grad for p in m.parameters())


def test_itm_pretrained_folder_freezes_clip_and_trains_the_head(reg, tiny_clip_folder):
    vocab = WordVocab.build(["red square at top left", "blue square at bottom right"])
    m = reg.build(
        "matcher",
        MatcherSlot(type="itm", params={"path": str(tiny_clip_folder), "text_dim": 20}),
        vocab=vocab,
    )
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {
        "region_proj.weight", "code_proj.weight", "code_proj.bias", "sentence_proj.weight",
        "sentence_proj.bias", "word_proj.weight", "word_proj.bias", "word_norm.weight", "word_norm.bias",
    }  # fmt: skip
    m.train()
    assert not m.clip.training  # frozen towers stay in eval mode
    ids, mask = zip(
        *(vocab.encode(c, 8) for c in ["red square at top left", "blue square"]), strict=True
    )
    img, text = m(torch.rand(2, 3, 40, 40) * 2 - 1, torch.tensor(ids), torch.tensor(mask))
    assert img.regions.shape == (2, 20, 16) and img.code.shape == (2, 20)
    assert text.lengths.tolist() == [5, 2] and text.words.shape[1] == 20
    # the cache keeps only what trains
    assert set(m.trainable_state_dict()) == trainable
    # gradients reach the images through the frozen image tower (needed by the GAN losses)
    images = torch.zeros(1, 3, 16, 16, requires_grad=True)
    m.encode_image(images).code.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_missing_clip_folder_fails_at_construction(reg, tmp_path):
    where = tmp_path / "absent-clip"
    with pytest.raises(MissingAssetError) as info:
        reg.build("matcher", MatcherSlot(type="itm", params={"path": str(where)}), vocab_size=10)
    msg = str(info.value)
    assert str(where) in msg and "config.json" in msg and "nothing is downloaded" in msg
    assert "\n" not in msg
    # a folder without config.json is named as incomplete
    where.mkdir()
    with pytest.raises(MissingAssetError, match="config.json is missing"):
        reg.build("matcher", MatcherSlot(type="itm", params={"path": str(where)}), vocab_size=10)


def test_missing_inception_fails_at_construction_with_the_expected_path(reg, tmp_path):
    with pytest.raises(MissingAssetError) as info:
        reg.build(
            "matcher", MatcherSlot(type="damsm", params={"backbone": "inception"}), vocab_size=10
        )
    msg = str(info.value)
    assert str(tmp_path / "home" / "torchvision" / "inception_v3_google-0cc3c7bd.pth") in msg
    assert "IMAGENET1K_V1" in msg and "T2I_STAGES_HOME" in msg


def test_inception_backbone_from_a_local_file(reg, tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    m = reg.build(
        "matcher",
        MatcherSlot(
            type="damsm",
            params={"backbone": "inception", "inception_weights": str(path), "text_dim": 32},
        ),
        vocab_size=10,
    )
    trainable = {n for n, p in m.named_parameters() if p.requires_grad and n.startswith("image.")}
    assert trainable == {
        "image.region_proj.weight",
        "image.code_proj.weight",
        "image.code_proj.bias",
    }
    m.train()
    assert not m.image.backbone.training
    with torch.no_grad():
        img = m.encode_image(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert img.regions.shape == (1, 32, 289) and img.code.shape == (1, 32)  # 17x17 Mixed_6e grid


def test_params_schema_is_documented(reg):
    for kind in ("matcher", "text_encoder", "loss"):
        for name in reg.names(kind):
            if kind == "loss" and "matching" not in name:
                continue
            model = reg.get(kind, name).spec.params
            assert model.__doc__, f"{kind} {name} params lack a docstring"
            for field_name, field in model.model_fields.items():
                assert field.description, f"{kind} {name}.{field_name} lacks a description"
