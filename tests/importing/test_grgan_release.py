"""Golden parity with GR-GAN's own code (tests/fixtures/reference/grgan): G_NET and D_NET128
import through `t2i-stages import`, and the rebuilt models give the reference's images,
attention maps, CA statistics, D features and logits, and spectral-norm state. Each reference
quirk the import switches on is pinned both ways: the reference setting matches the fixture,
the other one differs measurably."""

from __future__ import annotations

import json

import pytest
import torch
from reference_text_side import (
    GRGAN,
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
from t2i_stages.importing.api import choose_importer, import_release
from t2i_stages.importing.legacy import read_release_file
from t2i_stages.recipe.slots import Slot

TEXT_DIM = 16  # the fixture's EMBEDDING_DIM
QUIET = {"log": lambda m: None}
MEMORY = [f"generator.params.stages.{i}.params" for i in (1, 2)]


@pytest.fixture(scope="module")
def text_side(registry, tmp_path_factory):
    """An ITM text side of the fixture's size (the fixture holds no ITM)."""
    overrides = [f"matcher.params.text_dim={TEXT_DIM}", f"generator.params.text_dim={TEXT_DIM}"]
    overrides += [f"discriminators.{i}.params.text_dim={TEXT_DIM}" for i in range(3)]
    folder = tmp_path_factory.mktemp("grgan-text") / "itm"
    return text_side_run(registry, folder, "builtin:grgan.yaml", overrides)


@pytest.fixture(scope="module")
def imported(registry, text_side, tmp_path_factory):
    out = tmp_path_factory.mktemp("grgan") / "run"
    files = [GRGAN / "netG.pth", GRGAN / "netD1.pth", text_side]
    return import_release("grgan", files, out, registry=registry, **QUIET)


@pytest.fixture(scope="module")
def io():
    return io_tensors(GRGAN)


@pytest.fixture(scope="module")
def reference(registry, imported):
    return rebuild(imported, registry)


def _text(io):
    """The fixture's text in the project's convention: the mask aligned with the word slots,
    True = real (EOT counted as a word, as the reference's mask does); the reference's
    off-by-one is the conditioning levels' ``shift_mask``, not the input."""
    real = ~io["in.mask_padding_aligned_info"]
    return text_features(io["in.sent_emb"], io["in.words_embs"], real)


@torch.no_grad()
def _generate(g, io):
    return g(io["in.noise"], io["in.eps"], _text(io))


def _g_diffs(out, io) -> dict[str, float]:
    diffs = {f"out.image.{i}": max_diff(out.images[i], io[f"out.image.{i}"]) for i in range(3)}
    for i in (1, 2):
        diffs[f"out.attention.{i}"] = max_diff(out.attention[i - 1], io[f"out.attention.{i}"])
    diffs["out.mu"] = max_diff(out.mu, io["out.mu"])
    diffs["out.logvar"] = max_diff(out.logvar, io["out.logvar"])
    return diffs


@torch.no_grad()
def _d_outputs(d, io):
    features = d(io["out.image.1"])  # the reference's stage-2 image: D parity on its own
    logits = d.cond_logits(features, d.condition(_text(io)))
    return features, logits


def test_the_generator_matches_every_stage_attention_and_ca(reference, io, imported):
    record = json.loads((imported / "import.json").read_text())
    assert record["family"] == "grgan" and record["dropped"] == {}
    assert record["components"]["generator"]["tensors"] == 95
    assert record["components"]["discriminator_1"]["tensors"] == 30
    out = _generate(reference.generator, io)
    diffs = _g_diffs(out, io)
    with torch.no_grad():
        c = reference.generator.stages[0].conditioning(_text(io), io["in.eps"]).vector
    diffs["out.c_code"] = max_diff(c, io["out.c_code"])
    assert all(d <= TOL for d in diffs.values()), diffs


def test_d128_matches_and_advances_its_spectral_norm_as_the_reference(registry, imported, io):
    """Quirk: code/spectral.py runs one power iteration in every forward (eval mode too), v
    from u first; `spectral_norm: reference` (set by the import) does, and leaves u and v where
    the reference left them after one trunk and one COND_DNET call."""
    d = rebuild(imported, registry).discriminators[1]
    features, logits = _d_outputs(d, io)
    diffs = {
        "out.d.features": max_diff(features, io["out.d.features"]),
        "out.d.cond_logits": max_diff(logits, io["out.d.cond_logits"]),
        "out.d.cond_prob": max_diff(torch.sigmoid(logits), io["out.d.cond_prob"]),
    }
    state = d.state_dict()
    ours = {
        "img_code_s16.0": "trunk.0",
        "img_code_s16.2": "trunk.2.0",
        "img_code_s16.4": "trunk.3.0",
        "img_code_s16.6": "trunk.4.0",
        "img_code_s32.0": "trunk.5.0",
        "img_code_s32_1.0": "trunk.6.0",
        "COND_DNET.jointConv.0": "cond_joint.0",
    }
    for ref, mine in ours.items():
        for uv in ("u", "v"):
            key = f"out.d.sn_after.{ref}.module.weight_{uv}"
            diffs[key] = max_diff(state[f"{mine}.parametrizations.weight.0._{uv}"], io[key])
    assert len(diffs) == 3 + 14 and all(x <= TOL for x in diffs.values()), diffs


def test_torch_spectral_norm_differs_from_the_reference(registry, imported, io):
    torch_sn = rebuild(imported, registry, ["discriminators.1.params.spectral_norm=torch"])
    d = torch_sn.discriminators[1]
    before = {k: v.clone() for k, v in d.state_dict().items() if k.endswith(("_u", "_v"))}
    features, logits = _d_outputs(d, io)  # eval: torch keeps u, v and uses the stored v
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in before.items())
    assert max_diff(logits, io["out.d.cond_logits"]) > 1.0
    d.train()  # training mode: torch iterates too, but u from v first
    features, logits = _d_outputs(d, io)
    assert max_diff(features, io["out.d.features"]) > 1e-3
    assert max_diff(logits, io["out.d.cond_logits"]) > 1e-3


def test_the_reference_power_iteration_never_reads_the_stored_v(registry, imported, io):
    """What makes the reference's order visible: v is recomputed from u before it is used, so
    a D whose stored v is garbage gives the same logits; torch's (training mode) does not."""
    for sn, same in (("reference", True), ("torch", False)):
        d = rebuild(imported, registry, [f"discriminators.1.params.spectral_norm={sn}"])
        d = d.discriminators[1].train()
        state = {k: v.clone() for k, v in d.state_dict().items()}
        first = _d_outputs(d, io)[1]
        d.load_state_dict(state)  # back to the saved u, v
        with torch.no_grad():
            for k, v in d.state_dict().items():
                if k.endswith("._v"):
                    v.copy_(torch.flip(v, [0]))
        second = _d_outputs(d, io)[1]
        assert torch.equal(first, second) is same, sn


def test_the_off_by_one_mask_is_reproduced_and_the_aligned_one_differs(registry, imported, io):
    """Quirk: the reference masks (tokens == 0)[:, :T] while the words are tokens 1..T, so the
    padded caption's EOT and first pad slot are attended. `shift_mask: true` does it from the
    aligned mask; false masks exactly the padded slots."""
    aligned = rebuild(
        imported, registry, [f"{p}.conditioning.params.shift_mask=false" for p in MEMORY]
    )
    out = _generate(aligned.generator, io)
    diffs = _g_diffs(out, io)
    assert diffs["out.attention.2"] > 1e-3 and diffs["out.image.2"] > 1e-4, diffs
    # caption 1's word slot 4 is a pad token the reference attends where caption 1's mask is
    # used (the odd pixels, see the layout quirk); with the aligned mask it gets nothing there
    odd = slice(1, None, 2)
    assert float(out.attention[1][:, 4].reshape(2, -1)[:, odd].abs().max()) == 0.0
    assert float(io["out.attention.2"][:, 4].reshape(2, -1)[:, odd].min()) > 0.0


def test_the_memory_mask_batch_mixup_is_reproduced_and_the_aligned_layout_differs(
    registry, reference, imported, io
):
    """Quirk: Memory repeats the (B, T) mask as mask.repeat(H*W, 1) against batch-major rows,
    so with B = 2 every image's even pixels get caption 0's mask and its odd pixels caption
    1's. `reference_mask_layout: true` reproduces it (reference.json facts); false lines the
    mask up with its own caption."""
    att = _generate(reference.generator, io).attention[0]  # stage 2, (B, T, 64, 64)
    flat = att[:, 5].reshape(2, -1)  # the slot only caption 1 masks
    for b in (0, 1):
        assert float(flat[b, 1::2].abs().max()) == 0.0  # odd pixels: caption 1's mask
        assert abs(float(flat[b, 0::2].min()) - 1 / 6) < 1e-6  # even: caption 0's, uniform
    layout = [f"{p}.fusion.params.reference_mask_layout=false" for p in MEMORY]
    out = _generate(rebuild(imported, registry, layout).generator, io)
    diffs = _g_diffs(out, io)
    assert diffs["out.attention.1"] > 0.1 and diffs["out.attention.2"] > 1e-3, diffs
    assert diffs["out.image.2"] > 1e-3, diffs
    # stage 2's slots all hold the same sentence: whatever the mask, it reads the same value
    assert diffs["out.image.1"] <= TOL, diffs
    own = out.attention[0][:, 5].reshape(2, -1)
    assert float(own[0].min()) > 0.16 and float(own[1].abs().max()) == 0.0


def test_the_duplicated_response_is_reproduced(registry, imported, io):
    """Quirk: h_new is concatenated with itself before the ResBlocks; `duplicate_response:
    false` ([h_new ; o] instead) changes stages 2 and 3."""
    other = rebuild(
        imported, registry, [f"{p}.fusion.params.duplicate_response=false" for p in MEMORY]
    )
    diffs = _g_diffs(_generate(other.generator, io), io)
    assert diffs["out.image.1"] > 1e-4 and diffs["out.image.2"] > 1e-4, diffs
    assert diffs["out.image.0"] <= TOL


def test_d3s_condition_is_the_mean_over_every_slot(registry, reference, imported, io):
    """Quirk: D_NET256 is fed torch.mean(words, dim=2) over all T slots, padding included
    (`mean_words: masked false`, the default); the masked mean differs on the padded caption."""
    with torch.no_grad():
        got = reference.discriminators[2].condition(_text(io))
    assert max_diff(got, io["out.d.word_mean"]) <= TOL
    masked = rebuild(
        imported, registry, ["discriminators.2.params.conditioning.params.masked=true"]
    )
    with torch.no_grad():
        other = masked.discriminators[2].condition(_text(io))
    assert max_diff(other[0], io["out.d.word_mean"][0]) <= TOL  # caption 0 has no padding
    assert max_diff(other[1], io["out.d.word_mean"][1]) > 1e-2


def test_auto_tells_grgan_by_its_d_and_refuses_to_guess_from_g_net_alone(
    registry, text_side, tmp_path
):
    g, d1 = read_release_file(GRGAN / "netG.pth"), read_release_file(GRGAN / "netD1.pth")
    family, _, release = choose_importer("auto", [g, d1], registry)
    assert family == "grgan" and "told by D_NET128 without UNCOND_DNET" in release
    grgan = registry.build("importer", Slot(type="grgan"))
    assert "from G_NET alone" in grgan.identify([g])
    # DM-GAN's G_NET has the same keys and shapes: the dmgan importer claims a bare one too,
    # and auto refuses, naming both, instead of guessing
    with pytest.raises(T2IError, match=r"could be more than one release \(dmgan: .*grgan: "):
        choose_importer("auto", [g], registry)
    assert registry.build("importer", Slot(type="dmgan")).identify([g, d1]) is None
    dfgan = registry.build("importer", Slot(type="dfgan"))
    assert dfgan.identify([g, d1]) is None
    out = import_release(
        "auto",
        [GRGAN / "netG.pth", GRGAN / "netD1.pth", text_side],
        tmp_path / "auto",
        registry=registry,
        **QUIET,
    )
    assert json.loads((out / "import.json").read_text())["family"] == "grgan"


def _reference_d(sd: dict[str, torch.Tensor], stage: int) -> dict[str, torch.Tensor]:
    """Our stagewise D's state dict under GR-GAN's D_NET names (the inverse of the import's key
    map, written out here independently)."""
    convs = {"trunk.0": "img_code_s16.0", "trunk.2.0": "img_code_s16.2"}
    convs |= {"trunk.3.0": "img_code_s16.4", "trunk.4.0": "img_code_s16.6"}
    convs["cond_joint.0"] = "COND_DNET.jointConv.0"
    if stage == 2:
        convs |= {"trunk.5.0": "img_code_s32.0", "trunk.6.0": "img_code_s64.0"}
        convs |= {"trunk.7.0": "img_code_s64_1.0", "trunk.8.0": "img_code_s64_2.0"}
    parts = {"parametrizations.weight.original": "weight_bar", "bias": "bias"}
    parts |= {
        "parametrizations.weight.0._u": "weight_u",
        "parametrizations.weight.0._v": "weight_v",
    }
    out = {}
    for ours, theirs in convs.items():
        for mine, ref in parts.items():
            out[f"{theirs}.module.{ref}"] = sd[f"{ours}.{mine}"]
    for head, ref in (("cond_out", "COND_DNET"), ("uncond_out", "UNCOND_DNET")):
        for p in ("weight", "bias"):
            if f"{head}.{p}" in sd:
                out[f"{ref}.outlogits.0.{p}"] = sd[f"{head}.{p}"]
    assert len(out) == len(sd)
    return out


def test_a_grgan_checkpoint_with_its_three_ds_imports(registry, reference, text_side, io, tmp_path):
    d64 = reference.discriminators[0].state_dict()
    d256 = reference.discriminators[2].state_dict()
    d128 = torch.load(GRGAN / "netD1.pth", weights_only=True)
    ckpt = {
        "epoch": 0,
        "netG": torch.load(GRGAN / "netG.pth", weights_only=True),
        "optimG": {"state": {}, "param_groups": []},
        "netD": [_reference_d(d64, 0), d128, _reference_d(d256, 2)],
        "optimD": [],
    }
    path = tmp_path / "checkpoint_0000.pth"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    family, _, release = choose_importer("auto", [read_release_file(path)], registry)
    assert family == "grgan" and "checkpoint layout" in release
    out = import_release("grgan", [path, text_side], tmp_path / "run", registry=registry, **QUIET)
    record = json.loads((out / "import.json").read_text())
    assert {f"discriminator_{i}" for i in range(3)} <= set(record["components"])
    built = rebuild(out, registry)
    assert all(torch.equal(built.discriminators[0].state_dict()[k], v) for k, v in d64.items())
    assert all(torch.equal(built.discriminators[2].state_dict()[k], v) for k, v in d256.items())
    features, logits = _d_outputs(built.discriminators[1], io)
    assert max_diff(logits, io["out.d.cond_logits"]) <= TOL
    assert max(_g_diffs(_generate(built.generator, io), io).values()) <= TOL


def test_a_dmgan_d_layout_and_a_missing_text_side_are_one_line_errors(
    registry, text_side, tmp_path
):
    d = torch.load(GRGAN / "netD1.pth", weights_only=True)
    d["UNCOND_DNET.outlogits.0.weight"] = torch.zeros(1, 64, 4, 4)
    d["UNCOND_DNET.outlogits.0.bias"] = torch.zeros(1)
    dm = tmp_path / "netD1.pth"
    torch.save(d, dm, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError, match=r"D_NET128 with UNCOND_DNET is DM-GAN's layout"):
        import_release(
            "grgan", [GRGAN / "netG.pth", dm, text_side], tmp_path / "a", registry=registry
        )
    with pytest.raises(T2IError) as info:
        import_release("grgan", [GRGAN / "netG.pth"], tmp_path / "b", registry=registry)
    (line,) = str(info.value).splitlines()
    assert "needs its text side, the ITM (text size 16)" in line
    assert "ITM_model*.pth and CLIP's bpe_simple_vocab_16e6.txt.gz" in line
    assert "recipe.resolved.yaml" in line
    damsm = text_side_run(registry, tmp_path / "damsm", "builtin:dfgan.yaml", [])
    with pytest.raises(T2IError, match=r"its matcher is 'damsm'; a grgan release takes matcher"):
        import_release("grgan", [GRGAN / "netG.pth", damsm], tmp_path / "c", registry=registry)


def test_the_imported_run_exports_with_parity_and_generates(registry, imported, tmp_path):
    from t2i_stages.export.api import export_run

    res = export_run(
        imported, registry=registry, exporter="torchscript", parity_batches=[2], out=tmp_path / "x"
    )
    assert res.manifest["parity"]["fp32"]["cases"]  # a parity failure raises
    png = tmp_path / "g.png"
    argv = ["generate", "--onnx", str(res.folder), "--text", "a red circle", "--n", "2"]
    assert main([*argv, "--provider", "cpu", "--out", str(png)]) == 0 and png.is_file()
    out = load_run(imported, registry=registry).generate(["a red circle"], seed=0)
    assert [i.shape[-1] for i in out.images] == [64, 128, 256]
    assert all(torch.isfinite(i).all() for i in out.images)
