"""Golden parity with DF-GAN's own code (tests/fixtures/reference/dfgan): its released layout
imports through `t2i-stages import`, and the rebuilt G and D give the reference's outputs."""

from __future__ import annotations

import json

import pytest
import torch
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
def imported(registry, text_side, tmp_path_factory):
    """The fixture's state_epoch_000.pth (DF-GAN's save_models layout, legacy format)."""
    out = tmp_path_factory.mktemp("dfgan") / "run"
    files = [DFGAN / "state_epoch_000.pth", text_side]
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
    got = _outputs(rebuild(imported, registry), io)
    diffs = {k: max_diff(v, io[k]) for k, v in got.items()}
    assert all(d <= TOL for d in diffs.values()), diffs
    # the run folder serves load_run as any run: its generator is the imported one
    run = load_run(imported, registry=registry)
    with torch.no_grad():
        again = run.generator(io["in.noise"], None, _text(io)).images[0]
    assert max_diff(again, io["out.image"]) <= TOL


def test_a_plain_netg_imports_alone_and_says_the_d_starts_from_init(
    registry, text_side, io, tmp_path
):
    files = [DFGAN / "netG.pth", text_side]
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
    out = import_release("dfgan", [ddp, text_side], tmp_path / "ddp", registry=registry, **QUIET)
    got = _outputs(rebuild(out, registry), io)
    assert max_diff(got["out.image"], io["out.image"]) <= TOL


def test_plain_netd_and_netc_files_form_the_d_and_one_alone_is_refused(
    registry, text_side, io, tmp_path
):
    plain = [DFGAN / "netG.pth", DFGAN / "netD.safetensors", DFGAN / "netC.safetensors"]
    out = import_release("dfgan", [*plain, text_side], tmp_path / "a", registry=registry, **QUIET)
    got = _outputs(rebuild(out, registry), io)
    assert max_diff(got["out.d.logits"], io["out.d.logits"]) <= TOL
    with pytest.raises(T2IError, match=r"netD.safetensors: NetD without NetC; they form one D"):
        import_release("dfgan", [*plain[:2], text_side], tmp_path / "b", registry=registry)


def test_auto_tells_dfgan_from_its_files_and_the_other_importers_decline(
    registry, text_side, tmp_path, capsys, monkeypatch
):
    import t2i_stages.importing.api as api

    monkeypatch.setattr(api, "load_registry", lambda: registry)
    for name in ("netG.pth", "state_epoch_000.pth"):
        out = tmp_path / name
        argv = ["import", "auto", str(DFGAN / name), str(text_side), "--out", str(out)]
        assert main(argv) == 0
        assert "import: dfgan (DF-GAN (tobran/DF-GAN" in capsys.readouterr().err
        assert json.loads((out / "import.json").read_text())["family"] == "dfgan"
    from t2i_stages.importing.legacy import read_release_file
    from t2i_stages.recipe.slots import Slot

    grgan = registry.build("importer", Slot(type="grgan"))
    assert grgan.identify([read_release_file(DFGAN / "state_epoch_000.pth")]) is None


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
    assert "t2i-stages import damsm" in line and "recipe.resolved.yaml" in line
    assert not (tmp_path / "r").exists()


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
    registry, text_side, tmp_path
):
    sd = torch.load(DFGAN / "netG.pth", weights_only=True)
    sd["GBlocks.1.c1.weight"] = torch.zeros(3, 3, 3, 3)
    bad = tmp_path / "netG_bad.pth"
    torch.save(sd, bad, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("dfgan", [bad, text_side], tmp_path / "r", registry=registry, **QUIET)
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
