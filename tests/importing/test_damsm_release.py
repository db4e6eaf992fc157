"""Golden parity of `t2i-stages import damsm` with AttnGAN's DAMSM (taoxugit/AttnGAN 0d000e6).

The fixture (tests/fixtures/reference/damsm, see its README.md and reference.json) is the
reference's RNN_ENCODER and CNN_ENCODER run at nef 16, 30 words, word embedding 300, on two
captions (one padded) and two 64 px images, with both upsampling settings. The full image
encoder (the Inception trunk included) and captions.pickle are made at test time
(reference_release.py); the three files are imported through the real path and the run's
matcher is compared with the reference: words, sentence, regions and code to 1e-5.
"""

from __future__ import annotations

import pickle
import pickletools

import pytest
import torch
from reference_release import (
    DAMSM,
    WORDS,
    captions_pickle_bytes,
    io_tensors,
    max_abs,
    quiet,
    reference_threads,
)

from t2i_stages.api import load_run, load_run_recipe
from t2i_stages.build import assemble
from t2i_stages.checkpoint import latest_good_checkpoint
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import choose_importer, import_release
from t2i_stages.importing.legacy import read_release_file
from t2i_stages.recipe import load_recipe
from t2i_stages.recipe.slots import MatcherSlot
from t2i_stages.text import load_tokenizer

TOL = 1e-5
# Through the fixture's randomly initialised Inception-v3 trunk (94 convs, BatchNorm calibrated
# on two images) rounding differs between CPU kinds: the regions move by up to 2.5e-4 (values
# up to 5) with AVX2 kernels, 0 with AVX-512 at one thread. The trunk is torchvision's, not a
# port; what the import maps is pinned exactly by the heads on the reference's own trunk
# outputs (TOL) and by the end-to-end comparison at this bound, far below what the other
# resize setting moves (5.7).
TRUNK_TOL = 1e-3


@pytest.fixture(scope="module")
def io():
    return io_tensors(DAMSM)


@pytest.fixture(scope="module")
def files(made_release_files):
    image, captions = made_release_files["image_encoder"], made_release_files["captions"]
    return [DAMSM / "text_encoder.pth", image, captions]


@pytest.fixture(scope="module")
def run_dir(reg, files, tmp_path_factory):
    return import_release("damsm", files, tmp_path_factory.mktemp("damsm") / "run", reg, quiet)


def run_matcher(reg, run_dir, overrides: tuple[str, ...] = ()):
    """The run's matcher as ``train.init_from`` loads it: built from the run's recipe (with
    ``overrides``), its checkpoint loaded strictly."""
    recipe = load_recipe(run_dir / "import.recipe.yaml", list(overrides), reg)
    vocab = load_tokenizer(run_dir / "vocab.json")
    matcher = assemble(recipe, reg, parts=["matcher"], vocab=vocab).matcher
    ckpt = latest_good_checkpoint(run_dir / "checkpoints")
    matcher.load_state_dict(ckpt.components["matcher"], strict=True)
    return matcher.eval()


@pytest.fixture(scope="module")
def matcher(reg, run_dir):
    return run_matcher(reg, run_dir)


def test_the_encoders_import_as_a_matcher_only_run(reg, run_dir, matcher):
    ckpt = latest_good_checkpoint(run_dir / "checkpoints")
    assert set(ckpt.components) == {"matcher"}
    assert len(ckpt.components["matcher"]) == 9 + 567  # both state dicts, the trunk included
    recipe = load_run_recipe(run_dir, reg)
    params = recipe.matcher.resolved
    assert (params.text_dim, params.embedding_dim, params.rnn_type) == (16, 300, "lstm")
    assert params.backbone == "inception_checkpoint" and params.resize_align_corners is False
    assert params.pretrain.enabled is False
    # a run started from it keeps the trunk in its own checkpoints: no file outside holds it
    assert set(matcher.trainable_state_dict()) == set(matcher.state_dict())
    assert load_tokenizer(run_dir / "vocab.json").itos == WORDS
    with pytest.raises(T2IError, match="holds no generator, only matcher .*train.init_from"):
        load_run(run_dir, registry=reg)


def test_the_text_side_matches_the_reference(run_dir, matcher, io):
    with torch.no_grad():  # the framework's mask: True = real word
        text = matcher.encode_text(io["in.captions"], io["in.mask_real"])
    assert max_abs(text.words, io["out.words_emb"]) <= TOL  # T = max(cap_lens) = 6 here
    assert float(text.words[1, :, 3:].abs().max()) == 0.0  # padded steps are exactly 0
    assert max_abs(text.sentence, io["out.sent_emb"]) <= TOL
    # the same from the caption text, through the release's vocabulary (captions.pickle)
    vocab = load_tokenizer(run_dir / "vocab.json")
    captions = [vocab.decode(row) for row in io["in.captions"]]
    ids, masks = zip(*(vocab.encode(c, 18) for c in captions), strict=True)
    with torch.no_grad():
        again = matcher.encode_text(torch.tensor(ids), torch.tensor(masks))
    assert max_abs(again.words[:, :, :6], io["out.words_emb"]) <= TOL
    assert float(again.words[:, :, 6:].abs().max()) == 0.0
    assert max_abs(again.sentence, io["out.sent_emb"]) <= TOL


@pytest.mark.parametrize("align_corners", [False, True])
def test_the_image_side_matches_the_reference_at_both_resize_settings(
    reg, run_dir, matcher, io, align_corners
):
    """false is AttnGAN's own line under torch >= 0.4.0 (the import's setting), true its
    torch <= 0.3.1 behaviour and DM-GAN's choice; each matches its reference, not the other."""
    if align_corners:
        overrides = ("matcher.params.resize_align_corners=true",)
        model = run_matcher(reg, run_dir, overrides)
    else:
        model = matcher
    tag, other = ("ac_true", "ac_false") if align_corners else ("ac_false", "ac_true")
    seen = {}
    trunk = model.image.backbone
    hooks = [
        trunk.Mixed_6e.register_forward_hook(lambda m, a, out: seen.update(mixed_6e=out)),
        trunk.Mixed_7c.register_forward_hook(lambda m, a, out: seen.update(mixed_7c=out)),
    ]
    with torch.no_grad(), reference_threads():
        image = model.encode_image(io["in.images"])
    for h in hooks:
        h.remove()
    regions = image.regions.reshape(2, 16, 17, 17)
    with torch.no_grad():  # the imported heads on the reference's own trunk outputs: exact
        code = model.image.code_proj(io[f"out.trunk.pooled.{tag}"])
        assert max_abs(code, io[f"out.code.{tag}"]) <= TOL
        if not align_corners:
            mixed = model.image.region_proj(io["out.trunk.mixed_6e.ac_false"])
            assert max_abs(mixed, io["out.regions.ac_false"]) <= TOL
    assert max_abs(regions, io[f"out.regions.{tag}"]) <= TRUNK_TOL  # end to end
    assert max_abs(image.code, io[f"out.code.{tag}"]) <= TRUNK_TOL
    assert max_abs(seen["mixed_7c"].mean(dim=(2, 3)), io[f"out.trunk.pooled.{tag}"]) <= TRUNK_TOL
    if not align_corners:
        assert max_abs(seen["mixed_6e"], io["out.trunk.mixed_6e.ac_false"]) <= TRUNK_TOL
    assert max_abs(regions, io[f"out.regions.{other}"]) > 0.1
    assert max_abs(image.code, io[f"out.code.{other}"]) > 0.01


def test_its_matcher_file_loads_as_pretrain_weights(reg, run_dir, matcher, io):
    from t2i_stages.plugins.matchers.pretrain.prepare import pretrain_matcher

    recipe = load_run_recipe(run_dir, reg)
    weights = latest_good_checkpoint(run_dir / "checkpoints").path / "matcher.safetensors"
    params = {**recipe.matcher.params, "pretrain": {"weights": str(weights)}}
    vocab = load_tokenizer(run_dir / "vocab.json")
    context = {"vocab": vocab, "vocab_size": len(vocab)}
    result = pretrain_matcher(
        MatcherSlot(type="damsm", params=params), None, None, registry=reg, context=context
    )
    with torch.no_grad(), reference_threads():
        code = result.matcher.eval().encode_image(io["in.images"]).code
    assert result.from_cache and result.steps == 0  # loaded, not trained
    assert max_abs(code, io["out.code.ac_false"]) <= TRUNK_TOL  # through the trunk (see above)


def test_a_trunk_from_a_checkpoint_is_never_pretrained_from_scratch(reg, run_dir):
    with pytest.raises(T2IError, match="cannot be pretrained from scratch"):
        load_recipe(run_dir / "import.recipe.yaml", ["matcher.params.pretrain.enabled=true"], reg)


def test_auto_tells_the_damsm_encoders(reg, files):
    loaded = [read_release_file(p) for p in files]
    family, _, release = choose_importer("auto", loaded, reg)
    assert family == "damsm" and release == "AttnGAN's DAMSM encoders (taoxugit/AttnGAN)"


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def _one_line(reg, files, tmp_path) -> str:
    with pytest.raises(T2IError) as info:
        import_release("damsm", files, tmp_path / "run", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert not (tmp_path / "run" / "checkpoints").exists()
    return line


def test_what_is_missing_or_wrong_is_one_line_naming_the_file(reg, files, tmp_path):
    text, image, captions = files
    heads_only = DAMSM / "image_encoder.pth"  # the fixture's 3 tensors, no trunk
    line = _one_line(reg, [text, heads_only, captions], tmp_path)
    assert line.startswith(f"{heads_only}: holds the image encoder's projections but no Inception")
    line = _one_line(reg, [text, image], tmp_path)
    assert line.startswith("damsm: no captions.pickle among the files")
    line = _one_line(reg, [text, captions], tmp_path)
    assert line.startswith("damsm: a DAMSM matcher is one text encoder and one image encoder")
    short = tmp_path / "captions.pickle"
    short.write_bytes(captions_pickle_bytes(WORDS[:29], [[1, 2]]))
    line = _one_line(reg, [text, image, short], tmp_path)
    assert line == (
        f"{short}: has 29 words but text_encoder.pth's embedding has 30 rows; give the "
        "captions.pickle of the dataset it was trained on"
    )
    swapped = tmp_path / "swapped" / "captions.pickle"
    swapped.parent.mkdir()
    swapped.write_bytes(captions_pickle_bytes(["a", "<end>", *WORDS[2:]], [[1, 2]]))
    assert "ixtoword[0] is 'a', not '<end>'" in _one_line(reg, [text, image, swapped], tmp_path)


def test_captions_pickle_is_python2_protocol_2_and_read_without_running_code(reg, files, tmp_path):
    data = files[2].read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert data[:2] == b"\x80\x02" and "SHORT_BINSTRING" in ops  # Python 2's str
    assert not ops & {"GLOBAL", "STACK_GLOBAL", "BINUNICODE"}
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil" / "captions.pickle"
    evil.parent.mkdir()
    evil.write_bytes(pickle.dumps([[], [], {0: "<end>"}, _Payload(marker)], protocol=2))
    line = _one_line(reg, [files[0], files[1], evil], tmp_path)
    assert line.startswith(f"{evil}: not a plain-data pickle: refusing to load")
    assert not marker.exists()
