"""Golden parity with DF-GAN's own code (tests/fixtures/reference/dfgan): its released layout
imports through `t2i-stages import`, and the rebuilt G and D give the reference's outputs.

The text side is given as a DF-GAN user has it, the released DAMSM files: the DAMSM fixture's
text encoder (nef 16, the DF-GAN fixture's cond_dim) and a Python-2 captions.pickle written at
test time; a text-side run's recipe.resolved.yaml, the alternative, is pinned too."""

from __future__ import annotations

import json

import pytest
import torch
from reference_release import DAMSM, WORDS, write_captions_pickle
from reference_text_side import (
    DFGAN,
    TOL,
    io_tensors,
    max_diff,
    rebuild,
    text_features,
    text_side_run,
)

from t2i_stages.api import load_run
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import import_release

TEXT_DIM = 16  # the fixture's cond_dim
QUIET = {"log": lambda m: None}


@pytest.fixture(scope="module")
def text_side(registry, tmp_path_factory):
    """A DAMSM text side of the fixture's sentence size (the fixture has no text encoder)."""
    overrides = [
        f"matcher.params.text_dim={TEXT_DIM}",
        "matcher.params.embedding_dim=8",
        f"generator.params.text_dim={TEXT_DIM}",
        f"discriminators.0.params.text_dim={TEXT_DIM}",
    ]
    folder = tmp_path_factory.mktemp("dfgan-text") / "damsm"
    return text_side_run(registry, folder, "builtin:dfgan.yaml", overrides)


@pytest.fixture(scope="module")
def damsm_files(tmp_path_factory):
    """The released DAMSM text side: text_encoder.pth and the dataset's captions.pickle."""
    captions = write_captions_pickle(tmp_path_factory.mktemp("dfgan-damsm") / "captions.pickle")
    return [DAMSM / "text_encoder.pth", captions]


@pytest.fixture(scope="module")
def imported(registry, damsm_files, tmp_path_factory):
    """The fixture's state_epoch_000.pth (DF-GAN's save_models layout, legacy format) with the
    DAMSM files, as `t2i-stages import dfgan state_epoch_290.pth text_encoder100.pth
    captions.pickle` takes them."""
    out = tmp_path_factory.mktemp("dfgan") / "run"
    files = [DFGAN / "state_epoch_000.pth", *damsm_files]
    return import_release("dfgan", files, out, registry=registry, **QUIET)


@pytest.fixture(scope="module")
def io():
    return io_tensors(DFGAN)


def _text(io):
    # DF-GAN reads only the sentence; words and mask are there for the contract
    b = io["in.sent_emb"].shape[0]
    return text_features(io["in.sent_emb"], torch.zeros(b, TEXT_DIM, 1), torch.ones(b, 1).bool())


@torch.no_grad()
def _outputs(built, io):
    text = _text(io)
    image = built.generator(io["in.noise"], None, text).images[0]
    d = built.discriminators[0]
    features = d(io["out.image"])  # the reference's image: D parity on its own
    return {
        "out.image": image,
        "out.d.features": features,
        "out.d.logits": d.cond_logits(features, d.condition(text)).reshape(-1, 1, 1, 1),
    }


def test_state_epoch_imports_and_g_and_d_match_the_reference(registry, imported, io):
    record = json.loads((imported / "import.json").read_text())
    assert record["family"] == "dfgan" and "nf 8, z 10, sentence 16, 64 px" in record["release"]
    assert record["components"]["generator"]["tensors"] == 154
    assert record["components"]["discriminator_0"]["tensors"] == 22 + 2  # NetD + NetC
    assert record["dropped"] == {}
    assert record["components"]["text_encoder"] == {
        "from": str(DAMSM / "text_encoder.pth"),
        "tensors": 9,
    }
    got = _outputs(rebuild(imported, registry), io)
    diffs = {k: max_diff(v, io[k]) for k, v in got.items()}
    assert all(d <= TOL for d in diffs.values()), diffs
    # the run folder serves load_run as any run: its generator is the imported one
    run = load_run(imported, registry=registry)
    with torch.no_grad():
        again = run.generator(io["in.noise"], None, _text(io)).images[0]
    assert max_diff(again, io["out.image"]) <= TOL


def test_the_run_reads_text_with_the_released_damsm_and_no_matching_loss(registry, imported):
    """The run's text encoder is the released DAMSM RNN_ENCODER: the DAMSM fixture's captions
    give the reference's sentence vectors; the vocabulary is captions.pickle's; DF-GAN trains
    with no matching loss, so the recipe has none (and no matcher without image_encoder)."""
    run = load_run(imported, registry=registry)
    assert run.recipe.text_encoder.type == "damsm_rnn" and run.recipe.matcher is None
    assert [s.type for s in run.recipe.losses] == ["hinge_magp"]
    damsm = io_tensors(DAMSM)
    with torch.no_grad():
        text = run.text_encoder(damsm["in.captions"], damsm["in.mask_real"])
    assert max_diff(text.sentence, damsm["out.sent_emb"]) <= TOL
    assert [run.vocab.itos[i] for i in range(3)] == WORDS[:3]


def test_with_the_image_encoder_the_matcher_is_the_released_damsm_and_no_loss_is_added(
    registry, damsm_files, made_release_files, io, tmp_path
):
    """DF-GAN's prepare_models loads image_encoder*.pth frozen, but its train() never uses it
    (the MAP term is commented out): the import makes it the run's damsm matcher (the text
    side, and R-precision), resized as DF-GAN's CNN_ENCODER (align_corners=False), and adds no
    matching loss."""
    files = [DFGAN / "state_epoch_000.pth", *damsm_files, made_release_files["image_encoder"]]
    out = import_release("dfgan", files, tmp_path / "run", registry=registry, **QUIET)
    record = json.loads((out / "import.json").read_text())
    assert "text_encoder" not in record["components"]
    assert any("never uses it" in n for n in record["notes"])
    run = load_run(out, registry=registry)
    params = run.recipe.matcher.resolved
    assert run.recipe.matcher.type == "damsm" and run.recipe.text_encoder is None
    assert params.backbone == "inception_checkpoint" and params.resize_align_corners is False
    assert [s.type for s in run.recipe.losses] == ["hinge_magp"]
    assert run.text_encoder is run.matcher
    damsm = io_tensors(DAMSM)
    with torch.no_grad():
        text = run.matcher.encode_text(damsm["in.captions"], damsm["in.mask_real"])
        image = run.generator(io["in.noise"], None, _text(io)).images[0]
    assert max_diff(text.sentence, damsm["out.sent_emb"]) <= TOL
    assert max_diff(image, io["out.image"]) <= TOL


def test_a_text_side_run_is_the_alternative_and_gives_the_same_parity(
    registry, text_side, io, tmp_path
):
    """The recipe.resolved.yaml of a DAMSM text-side run (`t2i-stages import damsm`'s output,
    or a trained one) is still accepted in place of the files; both at once is refused."""
    files = [DFGAN / "state_epoch_000.pth", text_side]
    out = import_release("dfgan", files, tmp_path / "run", registry=registry, **QUIET)
    record = json.loads((out / "import.json").read_text())
    assert record["components"]["matcher"]["from"].endswith("matcher.safetensors")
    got = _outputs(rebuild(out, registry), io)
    diffs = {k: max_diff(v, io[k]) for k, v in got.items()}
    assert all(d <= TOL for d in diffs.values()), diffs
    both = [*files, DAMSM / "text_encoder.pth"]
    with pytest.raises(T2IError, match=r"^import dfgan: give one text side, the DAMSM files"):
        import_release("dfgan", both, tmp_path / "both", registry=registry, **QUIET)


def test_a_plain_netg_imports_alone_and_says_the_d_starts_from_init(
    registry, damsm_files, io, tmp_path
):
    files = [DFGAN / "netG.pth", *damsm_files]
    out = import_release("dfgan", files, tmp_path / "run", registry=registry, **QUIET)
    record = json.loads((out / "import.json").read_text())
    assert "discriminator_0" not in record["components"]
    assert any("NetD/NetC" in n for n in record["notes"])
    got = _outputs(rebuild(out, registry), io)
    assert max_diff(got["out.image"], io["out.image"]) <= TOL
    # trained with DDP, DF-GAN saves every key under `module.`: found all the same
    sd = torch.load(DFGAN / "netG.pth", weights_only=True)
    ddp = tmp_path / "netG_ddp.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, ddp)
    out = import_release("dfgan", [ddp, *damsm_files], tmp_path / "ddp", registry=registry, **QUIET)
    got = _outputs(rebuild(out, registry), io)
    assert max_diff(got["out.image"], io["out.image"]) <= TOL


def test_plain_netd_and_netc_files_form_the_d_and_one_alone_is_refused(
    registry, damsm_files, io, tmp_path
):
    plain = [DFGAN / "netG.pth", DFGAN / "netD.safetensors", DFGAN / "netC.safetensors"]
    out = import_release(
        "dfgan", [*plain, *damsm_files], tmp_path / "a", registry=registry, **QUIET
    )
    got = _outputs(rebuild(out, registry), io)
    assert max_diff(got["out.d.logits"], io["out.d.logits"]) <= TOL
    with pytest.raises(T2IError, match=r"netD.safetensors: NetD without NetC; they form one D"):
        import_release("dfgan", [*plain[:2], *damsm_files], tmp_path / "b", registry=registry)


def test_auto_tells_dfgan_from_its_files_and_the_other_importers_decline(
    registry, damsm_files, text_side, tmp_path, capsys, monkeypatch
):
    """NetG's GBlocks tell DF-GAN: with the DAMSM files (which DM-GAN's and AttnGAN's releases
    have too) or a text-side run, auto picks dfgan, and every other importer declines."""
    import t2i_stages.importing.api as api
    from t2i_stages.importing.api import choose_importer
    from t2i_stages.importing.legacy import read_release_file
    from t2i_stages.recipe.slots import Slot

    monkeypatch.setattr(api, "load_registry", lambda: registry)
    cases = {"netG.pth": [str(text_side)], "state_epoch_000.pth": list(map(str, damsm_files))}
    for name, text in cases.items():
        out = tmp_path / name
        argv = ["import", "auto", str(DFGAN / name), *text, "--out", str(out)]
        assert main(argv) == 0
        assert "import: dfgan (DF-GAN (tobran/DF-GAN" in capsys.readouterr().err
        assert json.loads((out / "import.json").read_text())["family"] == "dfgan"
    loaded = [read_release_file(p) for p in (DFGAN / "state_epoch_000.pth", *damsm_files)]
    assert choose_importer("auto", loaded, registry)[0] == "dfgan"
    for other in ("attngan", "damsm", "dmgan", "grgan"):
        importer = registry.build("importer", Slot(type=other))
        assert importer.identify(loaded) is None, other
        assert importer.identify(loaded[:1]) is None, other


def test_the_never_used_shortcut_is_kept_and_changes_nothing(registry, imported, io):
    """Quirk: D_Block builds conv_s also where fin == fout (the last block at 64 px) and never
    uses it. `unused_shortcuts: true` keeps its keys (the import sets it); false has no place
    for them, and gives the same features."""
    built = rebuild(imported, registry)
    d = built.discriminators[0]
    with torch.no_grad():
        before = d(io["out.image"])
        d.blocks[3].shortcut.weight.add_(1.0)  # the unused conv: nothing may change
        assert torch.equal(d(io["out.image"]), before)
    no_sc = ["discriminators.0.params.unused_shortcuts=false"]
    without = rebuild(imported, registry, no_sc, load_ds=False)
    d2 = without.discriminators[0]
    state = built.discriminators[0].state_dict()
    missing = sorted(set(state) - set(d2.state_dict()))
    assert missing == ["blocks.3.shortcut.bias", "blocks.3.shortcut.weight"]
    d2.load_state_dict({k: v for k, v in state.items() if k not in missing})
    with torch.no_grad():
        assert max_diff(d2(io["out.image"]), io["out.d.features"]) <= TOL


def test_without_a_text_side_the_import_says_what_to_add(registry, tmp_path):
    with pytest.raises(T2IError) as info:
        import_release("dfgan", [DFGAN / "netG.pth"], tmp_path / "r", registry=registry, **QUIET)
    (line,) = str(info.value).splitlines()
    assert "needs its DAMSM text encoder (sentence size 16)" in line
    # the released files first, the text-side run as the alternative
    assert line.index("text_encoder*.pth") < line.index("captions.pickle")
    assert line.index("captions.pickle") < line.index("recipe.resolved.yaml")
    assert "t2i-stages import damsm" in line
    assert not (tmp_path / "r").exists()


def test_the_damsm_files_errors_are_one_line_naming_the_file(registry, damsm_files, tmp_path):
    """The DAMSM checks are attngan's and dmgan's (damsm_side): a missing captions.pickle, one
    whose word count is not the embedding's rows, a text encoder of another sentence size."""
    g = DFGAN / "state_epoch_000.pth"
    encoder, captions = damsm_files

    def refused(files: list, name: str) -> str:
        with pytest.raises(T2IError) as info:
            import_release("dfgan", files, tmp_path / name, registry=registry, **QUIET)
        (line,) = str(info.value).splitlines()
        assert not (tmp_path / name).exists()
        return line

    line = refused([g, encoder], "no-captions")
    assert line.startswith("dfgan: no captions.pickle among the files")
    assert "import dfgan state_epoch_290.pth text_encoder100.pth captions.pickle" in line
    short = write_captions_pickle(tmp_path / "short.pickle", WORDS[:29])
    assert refused([g, encoder, short], "short") == (
        f"{short}: has 29 words but text_encoder.pth's embedding has 30 rows; give the "
        "captions.pickle of the dataset it was trained on"
    )
    line = refused([g, captions], "no-encoder")
    assert line.startswith("dfgan: state_epoch_000.pth's NetG has no text side")
    assert "text_encoder*.pth" in line
    hidden = 4  # nef 8: an LSTM direction has 4 gate blocks of 4 units
    rnn = {"weight_ih_l0": (16, 300), "weight_hh_l0": (16, hidden)}
    rnn |= {"bias_ih_l0": (16,), "bias_hh_l0": (16,)}
    sd = {"encoder.weight": torch.zeros(30, 300)}
    for name, shape in rnn.items():
        sd[f"rnn.{name}"] = sd[f"rnn.{name}_reverse"] = torch.zeros(shape)
    other = tmp_path / "text_encoder100.pth"
    torch.save(sd, other, _use_new_zipfile_serialization=False)
    assert refused([g, other, captions], "nef") == (
        f"{other}: gives nef 8 but state_epoch_000.pth's NetG reads nef 16; give the text "
        "encoder the generator was trained with"
    )


def test_a_text_side_of_another_size_or_kind_is_refused(registry, tmp_path):
    wide = text_side_run(
        registry,
        tmp_path / "wide",
        "builtin:dfgan.yaml",
        ["matcher.params.text_dim=32", "matcher.params.embedding_dim=8"],
    )
    with pytest.raises(T2IError, match="text features of size 32; the dfgan generator takes 16"):
        import_release("dfgan", [DFGAN / "netG.pth", wide], tmp_path / "a", registry=registry)
    itm = text_side_run(registry, tmp_path / "itm", "builtin:grgan.yaml", [])
    with pytest.raises(T2IError, match=r"its matcher is 'itm'; a dfgan release takes matcher"):
        import_release("dfgan", [DFGAN / "netG.pth", itm], tmp_path / "b", registry=registry)


def test_a_tensor_of_another_shape_is_one_line_naming_file_key_and_release(
    registry, damsm_files, tmp_path
):
    sd = torch.load(DFGAN / "netG.pth", weights_only=True)
    sd["GBlocks.1.c1.weight"] = torch.zeros(3, 3, 3, 3)
    bad = tmp_path / "netG_bad.pth"
    torch.save(sd, bad, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("dfgan", [bad, *damsm_files], tmp_path / "r", registry=registry, **QUIET)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{bad}: does not fit DF-GAN (tobran/DF-GAN 78f14fd NetG: nf 8, z 10")
    assert "'blocks.1.conv1.weight' has shape (3, 3, 3, 3) where (32, 64, 3, 3)" in line


def test_the_imported_run_exports_with_parity_and_generates(registry, imported, tmp_path):
    from t2i_stages.export.api import export_run

    res = export_run(
        imported, registry=registry, exporter="torchscript", parity_batches=[2], out=tmp_path / "x"
    )
    assert res.manifest["parity"]["fp32"]["cases"]  # a parity failure raises
    png = tmp_path / "g.png"
    argv = ["generate", "--onnx", str(res.folder), "--text", "a red circle", "--n", "2"]
    assert main([*argv, "--provider", "cpu", "--out", str(png)]) == 0 and png.is_file()
    image = load_run(imported, registry=registry).generate(["a red circle"], seed=0).images[-1]
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()
