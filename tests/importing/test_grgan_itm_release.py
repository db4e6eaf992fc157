"""Golden parity with GR-GAN's ITM (tests/fixtures/reference/grgan-itm): ``ITM_model*.pth`` and
CLIP's BPE file import through `t2i-stages import itm` (and as the text side of `import
grgan`), and the rebuilt ``itm`` matcher gives the reference's token ids, tower outputs,
sentence and word features (the generator's 12 slots with its off-by-one mask) and image
features. The layout quirk is pinned both ways."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from reference_text_side import GRGAN, REFERENCE, TOL, io_tensors, max_diff

from t2i_stages.api import load_run, load_run_recipe
from t2i_stages.checkpoint import latest_good_checkpoint
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import choose_importer, import_release
from t2i_stages.importing.legacy import read_release_file
from t2i_stages.plugin import ConditioningSlot
from t2i_stages.text import load_tokenizer

ITM = REFERENCE / "grgan-itm"
BPE = ITM / "bpe_simple_vocab_16e6.txt.gz"
QUIET = {"log": lambda m: None}
CAPTIONS = json.loads((ITM / "reference.json").read_text())["captions"]


@pytest.fixture(scope="module")
def itm_file(tmp_path_factory):
    """The reference's ``ITM_model0.pth``, gunzipped as saved."""
    path = tmp_path_factory.mktemp("itm-release") / "ITM_model0.pth"
    path.write_bytes(gzip.decompress((ITM / "ITM_model0.pth.gz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def run(reg, itm_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("itm") / "run"
    return import_release("itm", [itm_file, BPE], out, registry=reg, **QUIET)


@pytest.fixture(scope="module")
def io():
    return io_tensors(ITM)


def _matcher(run, reg, **params):
    """The run's matcher as load_run builds it (recipe.resolved.yaml + its checkpoint)."""
    recipe = load_run_recipe(run, reg)
    slot = recipe.matcher
    if params:
        slot = slot.model_copy(update={"params": {**slot.params, **params}})
    vocab = load_tokenizer(run / "vocab.json")
    m = reg.build("matcher", slot, vocab=vocab, vocab_size=len(vocab))
    saved = latest_good_checkpoint(run / "checkpoints").components["matcher"]
    missing, unexpected = m.load_state_dict(saved, strict=False)
    assert not unexpected and all(k.startswith(("clip.", "text.", "rn101.")) for k in missing)
    return m.eval()


@pytest.fixture(scope="module")
def matcher(run, reg):
    return _matcher(run, reg)


def test_the_run_holds_the_head_and_the_converted_towers(run, reg):
    record = json.loads((run / "import.json").read_text())
    assert record["family"] == "itm"
    saved = latest_good_checkpoint(run / "checkpoints").components["matcher"]
    # the checkpoint keeps the trained MLP head (9 tensors); the frozen towers are in clip-itm/
    assert sorted(saved) == sorted(
        [
            f"{m}.{p}"
            for m in ("code_proj", "sentence_proj", "word_proj", "word_norm")
            for p in ("weight", "bias")
        ]
        + ["region_proj.weight"]
    )
    folder = run / "clip-itm"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "rn101-visual.safetensors"):
        assert (folder / name).is_file(), name
    p = load_run_recipe(run, reg).matcher.params
    assert (p["word_layout"], p["grgan_words"], p["pixel_norm"], p["image_tower"]) == (
        "grgan",
        12,
        "none",
        "rn101",
    )
    assert p["path"] == str(folder.resolve())


def test_the_tokenizer_gives_clip_tokenize_ids(matcher, io):
    enc = matcher.text.tokenizer(CAPTIONS, padding="max_length", max_length=77, return_tensors="pt")
    # Hugging Face pads with the end token, clip.tokenize with 0 (what the grgan layout feeds)
    assert torch.equal(enc["input_ids"] * enc["attention_mask"], io["in.tokens"])


@torch.no_grad()
def test_the_towers_match_the_reference(matcher, io):
    hidden = matcher.clip.text_model(input_ids=io["in.tokens"]).last_hidden_state
    assert max_diff(hidden.transpose(1, 2), io["out.tower_words"]) <= TOL
    eos = hidden[torch.arange(3), io["in.tokens"].argmax(-1)]
    assert max_diff(matcher.clip.text_projection(eos), io["out.tower_sentence"]) <= TOL
    x = torch.nn.functional.interpolate(io["in.images"], size=(224, 224), mode="bilinear")
    code, layer3 = matcher.rn101(x)
    assert max_diff(code, io["out.tower_code"]) <= TOL
    assert max_diff(layer3, io["out.tower_layer3"]) <= TOL


@torch.no_grad()
def test_features_match_what_the_generator_and_losses_are_given(matcher, reg, io):
    text = matcher.encode_captions(CAPTIONS)
    assert max_diff(text.sentence, io["out.sent_emb"]) <= TOL
    assert max_diff(text.words, io["out.generator_words"]) <= TOL  # positions 1..12, as sliced
    # the stages' shift_mask turns the aligned mask into GR_trainer's (tokens == 0)[:, :12]
    words = reg.build(
        "conditioning", ConditioningSlot(type="words", params={"shift_mask": True}), text_dim=16
    )
    assert torch.equal(~words(text).mask, io["out.generator_mask"])
    image = matcher.encode_image(io["in.images"])
    assert max_diff(image.regions, io["out.regions"].flatten(2)) <= TOL
    assert max_diff(image.code, io["out.code"]) <= TOL


@torch.no_grad()
def test_the_real_words_layout_is_not_the_reference(run, reg, io):
    """Quirk pinned the other way: the default layout masks the end token and the padding and
    zeroes their features; GR-GAN's code keeps them, so only word_layout grgan matches."""
    ours = _matcher(run, reg, word_layout="real_words").encode_captions(CAPTIONS)
    ref = io["out.words_embs"]
    n = ours.words.shape[2]  # the start token's slot and the caption's real tokens only
    assert max_diff(ours.words[:, :, :n], ref[:, :, :n]) > 1e-3


def test_auto_tells_the_itm_and_grgans_generator_with_it(reg, itm_file):
    files = [read_release_file(p) for p in (itm_file, BPE)]
    assert choose_importer("auto", files, reg)[0] == "itm"
    files.append(read_release_file(GRGAN / "netG.pth"))
    family, _, why = choose_importer("auto", files, reg)
    assert family == "grgan" and "ITM" in why


def test_grgan_imports_with_its_released_itm_and_generates(reg, itm_file, tmp_path):
    files = [GRGAN / "netG.pth", GRGAN / "netD1.pth", itm_file, BPE]
    out = import_release("grgan", files, tmp_path / "run", registry=reg, **QUIET)
    loaded = load_run(out, registry=reg)
    assert loaded.recipe.matcher.params["word_layout"] == "grgan"
    images = loaded.generate(["a red circle on the left"] * 2, seed=0)
    assert [tuple(i.shape) for i in images.images] == [
        (2, 3, 64, 64),
        (2, 3, 128, 128),
        (2, 3, 256, 256),
    ]
    assert all(torch.isfinite(i).all() for i in images.images)


def test_missing_and_wrong_files_are_one_line_errors(reg, itm_file, tmp_path):
    with pytest.raises(T2IError, match="bpe_simple_vocab_16e6.txt.gz") as e:
        import_release("itm", [itm_file], tmp_path / "a", registry=reg, **QUIET)
    assert "\n" not in str(e.value)
    short = tmp_path / "bpe_short.txt.gz"
    short.write_bytes(gzip.compress(b"#version: 0.2\nh e\n"))
    with pytest.raises(T2IError, match="not OpenAI CLIP's BPE merges"):
        import_release("itm", [itm_file, short], tmp_path / "b", registry=reg, **QUIET)
    sd = torch.load(itm_file, weights_only=True)
    sd["MLP.dense_word.weight"] = sd["MLP.dense_word.weight"][:, :8]
    bad = tmp_path / "ITM_model1.pth"
    torch.save(sd, bad)
    with pytest.raises(T2IError, match="MLP.dense_word.weight") as e:
        import_release("itm", [bad, BPE], tmp_path / "c", registry=reg, **QUIET)
    assert "ITM_model1.pth" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "c" / "clip-itm").exists()


def test_the_released_sizes_are_read_off_the_shapes():
    """GR-GAN's real ITM_model149.pth: OpenAI's RN101 (text 512 x 12 layers, 8 heads, embed 512)
    and the MLP at nef 512 (read from shapes alone: meta tensors, no weights)."""
    from t2i_stages.plugins.importers.itm_format import find_itm, itm_config

    meta = {"device": "meta"}
    t = {
        "model.token_embedding.weight": torch.empty(49408, 512, **meta),
        "model.positional_embedding": torch.empty(77, 512, **meta),
        "model.text_projection": torch.empty(512, 512, **meta),
        "model.visual.attnpool.positional_embedding": torch.empty(50, 2048, **meta),
        "model.visual.attnpool.c_proj.weight": torch.empty(512, 2048, **meta),
        "MLP.emb_features.weight": torch.empty(512, 1024, 1, 1, **meta),
        "MLP.dense_word.weight": torch.empty(512, 512, **meta),
        "MLP.dense_sent.weight": torch.empty(512, 512, **meta),
        "MLP.emb_cnn_code.weight": torch.empty(512, 512, **meta),
        "MLP.LayerNorm.weight": torch.empty(512, **meta),
    }
    for i in range(12):
        t[f"model.transformer.resblocks.{i}.mlp.c_fc.weight"] = torch.empty(2048, 512, **meta)
    cfg = itm_config(find_itm(t, "ITM_model149.pth"))
    assert (cfg.width, cfg.layers, cfg.heads, cfg.mlp_width) == (512, 12, 8, 2048)
    assert (cfg.embed_dim, cfg.nef, cfg.region_channels, cfg.code_dim) == (512, 512, 1024, 512)


def test_the_fixture_is_data():
    """No reference code in the fixture folder: its files are weights, a vocabulary and JSON."""
    names = sorted(p.name for p in ITM.iterdir())
    assert names == [
        "ITM_model0.pth.gz",
        "README.md",
        "bpe_simple_vocab_16e6.txt.gz",
        "io.safetensors",
        "reference.json",
    ]
    ref = json.loads((ITM / "reference.json").read_text())
    assert (
        ref["commit"] == "3d84ec5071cd295bebd203392a7b8d28d6b61641"
        and ref["config"]["MLP"]["nef"] == 16
    )
