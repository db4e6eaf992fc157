"""Matchers: shapes of both sides, frozen/trainable parts, offline errors for absent weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

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


def test_inception_checkpoint_backbone_reads_no_file_and_checkpoints_its_trunk(reg):
    """An imported DAMSM's trunk comes with its weights: nothing is read from the (absent)
    ImageNet file, the trunk has CNN_ENCODER's layout (no fc), and a checkpoint keeps it."""
    params = {"backbone": "inception_checkpoint", "text_dim": 32, "pretrain": {"enabled": False}}
    m = reg.build("matcher", MatcherSlot(type="damsm", params=params), vocab_size=10)
    trunk = {k for k in m.state_dict() if k.startswith("image.backbone.")}
    assert len(trunk) == 564 and not any(".fc." in k or "AuxLogits" in k for k in trunk)
    assert set(m.trainable_state_dict()) == set(m.state_dict())
    assert not any(p.requires_grad for p in m.image.backbone.parameters())
    m.train()
    assert not m.image.backbone.training
    with pytest.raises(ValidationError, match="cannot be pretrained from scratch"):
        reg.validate_params("matcher", "damsm", {"backbone": "inception_checkpoint"})


def test_params_schema_is_documented(reg):
    for kind in ("matcher", "text_encoder", "loss"):
        for name in reg.names(kind):
            if kind == "loss" and "matching" not in name:
                continue
            model = reg.get(kind, name).spec.params
            assert model.__doc__, f"{kind} {name} params lack a docstring"
            for field_name, field in model.model_fields.items():
                assert field.description, f"{kind} {name}.{field_name} lacks a description"


def _save_tiny_openai_resnet(path):
    """A TorchScript archive shaped like OpenAI's RN101.pt (tiny sizes, half-precision weights)."""
    from t2i_stages.plugins.matchers.openai_rn101 import ModifiedResNet

    class Clip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = ModifiedResNet(
                (1, 2, 1, 1), output_dim=16, heads=4, input_resolution=64, width=8
            )
            self.logit_scale = torch.nn.Parameter(torch.ones([]))

        def forward(self, x):
            return self.visual(x)[0]

    torch.manual_seed(0)
    model = Clip().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), check_trace=False)
    traced.visual.attnpool.half()  # OpenAI stores many weights in half precision
    model.visual.attnpool.half()
    traced.save(str(path))
    return model


def test_openai_resnet_weights_are_read_without_running_the_archive(tmp_path):
    import pickle
    import zipfile

    from t2i_stages.plugins.matchers.openai_rn101 import ModifiedResNet, read_torchscript_state_dict

    path = tmp_path / "RN101.pt"
    model = _save_tiny_openai_resnet(path)
    state = read_torchscript_state_dict(path)
    expected = model.state_dict()
    assert set(state) == set(expected)
    for k, v in expected.items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k
    tower = ModifiedResNet.from_state_dict(state).eval()
    assert tower.region_channels == 128 and tower.input_resolution == 64
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.visual.attnpool.float()
        ref_pooled, ref_regions = model.visual(x)
        pooled, regions = tower(x)
    torch.testing.assert_close(pooled, ref_pooled)
    assert regions.shape == (2, 128, 4, 4)  # layer3: 1/16 of the input, 16 * width channels

    # a data.pkl naming any other global is refused, not executed
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("evil/data.pkl", b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(Exception, match="refusing to load 'os.system'"):
        read_torchscript_state_dict(evil)
    assert pickle  # (the payload above is a classic pickle exploit)
    with pytest.raises(Exception, match="not a TorchScript archive"):
        read_torchscript_state_dict(tmp_path / "missing.pt")


def test_itm_with_the_openai_resnet_image_tower(reg, tmp_path, tiny_clip_folder):
    path = tmp_path / "RN101.pt"
    _save_tiny_openai_resnet(path)
    params = {
        "path": str(tiny_clip_folder),
        "image_tower": "rn101",
        "rn101_weights": str(path),
        "text_dim": 12,
    }
    vocab = WordVocab.build(["red square at top left"])
    m = reg.build("matcher", MatcherSlot(type="itm", params=params), vocab=vocab)
    m.train()
    assert not m.rn101.training and not any(p.requires_grad for p in m.rn101.parameters())
    img = m.encode_image(torch.rand(2, 3, 40, 40) * 2 - 1)  # resized to the tower's 64 px
    assert img.regions.shape == (2, 12, 16) and img.code.shape == (2, 12)
    assert not any(k.startswith(("rn101.", "clip.")) for k in m.trainable_state_dict())
    with pytest.raises(MissingAssetError, match="RN101.pt"):
        reg.build(
            "matcher",
            MatcherSlot(type="itm", params={**params, "rn101_weights": None}),
            vocab=vocab,
        )


def test_damsm_pooled_cnn_and_mean_sentence(reg):
    params = {
        "text_dim": 32,
        "embedding_dim": 16,
        "sentence": "mean",
        "small_cnn": {"image_size": 32, "width": 8, "arch": "pooled", "code_pool": "avgmax"},
    }
    m = reg.build("matcher", MatcherSlot(type="damsm", params=params), vocab_size=20)
    images, tokens, mask = _batch(size=40)
    img, text = m(images, tokens, mask)
    assert img.regions.shape == (3, 32, 16) and img.code.shape == (3, 32)  # 32/8 = 4x4 regions
    assert m.image.code_proj.in_features == 2 * 8 * 8  # mean and max of the 8w-channel grid
    lengths = mask.sum(1, keepdim=True)
    assert torch.allclose(text.sentence, text.words.sum(2) / lengths, atol=1e-6)


def test_damsm_region_stop_gradient_keeps_the_word_loss_off_the_trunk(reg):
    params = {"text_dim": 16, "embedding_dim": 8, "small_cnn": {"image_size": 16, "width": 4}}
    for region_grad in (True, False):
        p = {**params, "small_cnn": {**params["small_cnn"], "region_grad": region_grad}}
        m = reg.build("matcher", MatcherSlot(type="damsm", params=p), vocab_size=20)
        images, _, _ = _batch(size=16)
        m.encode_image(images).regions.sum().backward()
        trunk = m.image.to_regions[0][0].weight.grad
        assert m.image.region_proj.weight.grad is not None
        assert (trunk is not None and trunk.abs().sum() > 0) == region_grad


def test_itm_conv_stem_and_mean_pooling(reg):
    params = {
        "scratch": {**TINY_ITM["scratch"], "patch_stem": "conv", "stem_width": 8},
        "image_pool": "mean",
        "text_pool": "mean",
        "region_grad": False,
    }
    m = reg.build("matcher", MatcherSlot(type="itm", params=params), vocab_size=20)
    images, tokens, mask = _batch()
    img, text = m(images, tokens, mask)
    assert img.regions.shape == (3, 24, 16) and img.code.shape == (3, 24)  # 32/8: 4x4 grid
    stem = m.clip.vision_model.embeddings.patch_embedding
    assert sum(isinstance(x, torch.nn.MaxPool2d) for x in stem.modules()) == 3  # 8 = 2^3
    img.regions.sum().backward()
    assert m.region_proj.weight.grad is not None and stem[0][0].weight.grad is None  # stop-gradient
    bad = {"scratch": {**TINY_ITM["scratch"], "patch_stem": "conv", "patch_size": 6}}
    with pytest.raises(Exception, match="power-of-two"):
        reg.build("matcher", MatcherSlot(type="itm", params=bad), vocab_size=20)


def test_itm_avgmax_image_code_reads_mean_plus_max_of_the_patch_tokens(reg):
    params = {"scratch": {**TINY_ITM["scratch"], "patch_stem": "conv"}, "image_pool": "avgmax"}
    m = reg.build("matcher", MatcherSlot(type="itm", params=params), vocab_size=20).eval()
    images, _, _ = _batch(size=32)  # the model's size: no resize
    with torch.no_grad():
        code = m.encode_image(images).code
        x = ((images + 1) / 2 - m.pixel_mean) / m.pixel_std
        patches = m.clip.vision_model(pixel_values=x).last_hidden_state[:, 1:]
        pooled = m.clip.vision_model.post_layernorm(patches.mean(1) + patches.amax(1))
        expected = m.code_proj(m.clip.visual_projection(pooled))
        mean_only = m.code_proj(
            m.clip.visual_projection(m.clip.vision_model.post_layernorm(patches.mean(1)))
        )
    torch.testing.assert_close(code, expected)
    assert not torch.allclose(code, mean_only, atol=1e-4)


def test_the_dmgan_resize_switch_changes_the_image_side_and_the_paper_recipes_set_it():
    """DM-GAN's CNN_ENCODER resizes with align_corners=True; the default keeps torch's False."""
    import torch.nn.functional as F

    from t2i_stages.plugins.matchers.resize import resize_images
    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry

    images = torch.rand(2, 3, 64, 64) * 2 - 1
    ref = F.interpolate(images, size=(96, 96), mode="bilinear", align_corners=True)
    assert torch.equal(resize_images(images, 96, align_corners=True), ref)
    assert (resize_images(images, 96) - ref).abs().max() > 1e-3
    registry = load_registry()
    for name in ("coco/dmgan.yaml", "cub/dmgan.yaml"):
        recipe = load_recipe(Path(__file__).parents[2] / "recipes" / name, registry=registry)
        assert recipe.matcher.resolved.resize_align_corners is True
