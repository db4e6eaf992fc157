"""Golden parity of `t2i-stages import dmgan` with DM-GAN's own code (MinfengZhu/DM-GAN d515995).

The fixture (tests/fixtures/reference/dmgan, see its README.md and reference.json) is the
reference's G_NET and D_NET128 run at a tiny config (gf 4, df 2, nef 16, z 10, c_dim 12,
R_NUM 1, 3 branches, batch 2 with one padded caption; the D's weight_bar perturbed so that its
spectral norm matters). Its legacy .pth files are imported through the real path with the
DAMSM fixture's text encoder (nef 16, as DM-GAN reuses AttnGAN's DAMSM) and a captions.pickle
made at test time, rebuilt, and fed the reference's inputs: every stage's image, the attention
maps, mu/logvar, the dynamic memory's internals, the D's features, logits and probabilities,
and its spectral-norm state after the call agree to 1e-5. Each quirk switch the import sets is
pinned both ways: the reference setting matches, the other differs measurably.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from reference_release import DAMSM, REFERENCE, io_tensors, quiet, reference_threads
from reference_text_side import GRGAN, TOL, max_diff, rebuild, text_features, text_side_run

from t2i_stages.api import load_run, load_run_recipe
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import choose_importer, import_release
from t2i_stages.importing.legacy import read_release_file
from t2i_stages.recipe import load_recipe
from t2i_stages.recipe.slots import Slot

DMGAN = REFERENCE / "dmgan"
RELEASE = (
    "DM-GAN (MinfengZhu/DM-GAN d515995 G_NET: gf 4, z 10, c 12, text 16, R_NUM 1, 64/128/256 px)"
)
MEMORY = [f"generator.params.stages.{i}.params.fusion.params" for i in (1, 2)]
SN_CONVS = {  # the reference's spectral-normalised convs of D_NET128 -> ours
    "img_code_s16.0": "trunk.0",
    "img_code_s16.2": "trunk.2.0",
    "img_code_s16.4": "trunk.3.0",
    "img_code_s16.6": "trunk.4.0",
    "img_code_s32.0": "trunk.5.0",
    "img_code_s32_1.0": "trunk.6.0",
    "COND_DNET.jointConv.0": "cond_joint.0",
}


@pytest.fixture(scope="module")
def io():
    return io_tensors(DMGAN)


@pytest.fixture(scope="module")
def files(made_release_files):
    """netG, the 128 px D, the DAMSM text encoder and captions.pickle (no image encoder)."""
    netg, netd = DMGAN / "netG.pth", DMGAN / "netD1.pth"
    return [netg, netd, DAMSM / "text_encoder.pth", made_release_files["captions"]]


@pytest.fixture(scope="module")
def run_dir(reg, files, tmp_path_factory):
    return import_release("dmgan", files, tmp_path_factory.mktemp("dmgan") / "run", reg, quiet)


@pytest.fixture(scope="module")
def built(reg, run_dir):
    return rebuild(run_dir, reg)


def _text(io):
    """The fixture's text in the framework's convention: True = real word."""
    assert torch.equal(io["in.mask_real"], ~io["in.mask_padding"])
    return text_features(io["in.sent_emb"], io["in.words_embs"], io["in.mask_real"])


@torch.no_grad()
def _generate(g, io):
    return g(io["in.z"], io["in.eps"], _text(io))


def _g_diffs(out, io) -> dict[str, float]:
    diffs = {f"out.image.{i}": max_diff(out.images[i], io[f"out.image.{i}"]) for i in range(3)}
    for i in (1, 2):  # (B, T, H, W) at the stage's input resolution
        diffs[f"out.attention.{i}"] = max_diff(out.attention[i - 1], io[f"out.attention.{i}"])
    diffs["out.mu"] = max_diff(out.mu, io["out.mu"])
    diffs["out.logvar"] = max_diff(out.logvar, io["out.logvar"])
    return diffs


def _hook_memory(g, seen: dict) -> list:
    """Forward hooks that record what the reference's hooks recorded, in its layout."""

    def keep(name, pick):
        return lambda m, args, out: seen.__setitem__(name, pick(args, out))

    hooks = [
        g.stages[0].conditioning.register_forward_hook(keep("c_code", lambda a, o: o.vector)),
        g.stages[0].upsample.register_forward_hook(keep("h_code.0", lambda a, o: o)),
    ]
    for n in (1, 2):
        fusion = g.stages[n].fusion
        tag = f"dm.{n}"
        hooks += [
            fusion.gate_image.register_forward_hook(keep(f"{tag}.h_avg", lambda a, o: a[0])),
            fusion.gate_image.register_forward_hook(keep(f"{tag}.gate_image", lambda a, o: o)),
            fusion.gate_words.register_forward_hook(keep(f"{tag}.gate_words", lambda a, o: o)),
            fusion.key.register_forward_hook(keep(f"{tag}.memory", lambda a, o: a[0])),
            fusion.key.register_forward_hook(keep(f"{tag}.key", lambda a, o: o)),
            fusion.value.register_forward_hook(keep(f"{tag}.value", lambda a, o: o)),
            fusion.response_gate.register_forward_hook(
                keep(f"{tag}.response_gate", lambda a, o: torch.sigmoid(o))
            ),
        ]
    return hooks


def test_every_stage_and_the_dynamic_memory_match_the_reference(built, run_dir, io):
    record = json.loads((run_dir / "import.json").read_text())
    assert record["family"] == "dmgan" and record["dropped"] == {}
    assert record["components"]["generator"]["tensors"] == 95
    assert record["components"]["discriminator_1"]["tensors"] == 32
    assert record["components"]["text_encoder"]["tensors"] == 9
    g = built.generator
    seen: dict[str, torch.Tensor] = {}
    hooks = _hook_memory(g, seen)
    out = _generate(g, io)
    for h in hooks:
        h.remove()
    diffs = _g_diffs(out, io)
    diffs["out.c_code"] = max_diff(seen["c_code"], io["out.c_code"])
    diffs["out.h_code.0"] = max_diff(seen["h_code.0"], io["out.h_code.0"])
    for n in (1, 2):
        tag = f"dm.{n}"
        avg = seen[f"{tag}.h_avg"]  # (B, C): the reference keeps (B, C, 1, 1)
        diffs[f"out.{tag}.h_avg"] = max_diff(avg[:, :, None, None], io[f"out.{tag}.h_avg"])
        gate = torch.sigmoid(
            seen[f"{tag}.gate_words"].transpose(1, 2) + seen[f"{tag}.gate_image"][:, :, None]
        )  # sigmoid(A(w)^T + B(h_avg)): (B, 1, T), the padded words written too
        diffs[f"out.{tag}.writing_gate"] = max_diff(gate, io[f"out.{tag}.writing_gate"])
        for part in ("memory", "key", "value"):
            diffs[f"out.{tag}.{part}"] = max_diff(seen[f"{tag}.{part}"], io[f"out.{tag}.{part}"])
    diffs["out.dm.1.response_gate"] = max_diff(
        seen["dm.1.response_gate"], io["out.dm.1.response_gate"]
    )
    assert len(diffs) == 7 + 2 + 2 * 5 + 1
    assert all(d <= TOL for d in diffs.values()), diffs
    train = copy.deepcopy(g).train()  # the reference trains G in train mode (batch statistics)
    image = _generate(train, io).images[0]
    assert max_diff(image, io["out.train.image.0"]) <= TOL
    assert max_diff(image, io["out.image.0"]) > 1e-2  # the two modes are told apart


@torch.no_grad()
def _d_outputs(d, io):
    features = d(io["out.image.1"])  # the reference's stage-2 image: D parity on its own
    uncond = d.uncond_logits(features)
    cond = d.cond_logits(features, d.condition(_text(io)))  # the raw sentence, as COND_DNET
    return features, uncond, cond


def test_d128_matches_and_advances_its_spectral_norm_as_the_reference(reg, run_dir, io):
    """Quirk: code/spectral.py does one power iteration (v from u first) in every forward, eval
    mode included; `spectral_norm: reference` (the import's) leaves u and v where the reference
    left them after one trunk and one COND_DNET call, and divides by the same sigma."""
    d = rebuild(run_dir, reg).discriminators[1]
    assert not d.training
    features, uncond, cond = _d_outputs(d, io)
    diffs = {
        "out.d.features": max_diff(features, io["out.d.features"]),
        "out.d.uncond_logits": max_diff(uncond, io["out.d.uncond_logits"]),
        "out.d.cond_logits": max_diff(cond, io["out.d.cond_logits"]),
        "out.d.uncond_prob": max_diff(torch.sigmoid(uncond), io["out.d.uncond_prob"]),
        "out.d.cond_prob": max_diff(torch.sigmoid(cond), io["out.d.cond_prob"]),
    }
    state = d.state_dict()
    for ref, ours in SN_CONVS.items():
        u = state[f"{ours}.parametrizations.weight.0._u"]
        v = state[f"{ours}.parametrizations.weight.0._v"]
        for name, value in (("u", u), ("v", v)):
            key = f"out.d.sn_after.{ref}.module.weight_{name}"
            diffs[key] = max_diff(value, io[key])
        w = state[f"{ours}.parametrizations.weight.original"].flatten(1)
        sigma = torch.dot(u, w @ v).reshape(1)  # the divisor of that forward
        diffs[f"out.d.sn_sigma.{ref}"] = max_diff(sigma, io[f"out.d.sn_sigma.{ref}"])
    assert len(diffs) == 5 + 7 * 3 and all(x <= TOL for x in diffs.values()), diffs
    assert all(abs(float(io[f"out.d.sn_sigma.{r}"]) - 1) > 0.02 for r in SN_CONVS)  # it divides


def test_torch_spectral_norm_differs_from_the_reference(reg, run_dir, io):
    """The other setting: torch's parametrization keeps u and v in eval mode and uses the
    stored v, which the reference never reads."""
    d = rebuild(run_dir, reg, ["discriminators.1.params.spectral_norm=torch"]).discriminators[1]
    before = {k: v.clone() for k, v in d.state_dict().items() if k.endswith(("_u", "_v"))}
    features, uncond, cond = _d_outputs(d, io)
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in before.items())
    assert max_diff(features, io["out.d.features"]) > 1e-2
    assert max_diff(cond, io["out.d.cond_logits"]) > 1e-2
    assert max_diff(uncond, io["out.d.uncond_logits"]) > 1e-4


def test_the_memory_mask_layout_is_the_references_and_the_aligned_one_differs(
    reg, run_dir, built, io
):
    """Quirk: Memory repeats the (B, T) mask as mask.repeat(queryL, 1) against batch-major
    rows, so pixel q of both captions takes caption (q mod 2)'s mask: the full caption loses
    its words 3-5 at odd pixels, the padded one attends to its padding at even pixels.
    `reference_mask_layout: true` (the import's) does that; false masks each caption by its
    own mask, which is not the release's arithmetic."""
    padded = slice(3, 6)  # caption 1 has 3 words, caption 0 has 6
    ref = _generate(built.generator, io)
    own = _generate(
        rebuild(run_dir, reg, [f"{p}.reference_mask_layout=false" for p in MEMORY]).generator, io
    )
    for i in (1, 2):
        attention = ref.attention[i - 1].flatten(2)  # (B, T, H*W), pixel q = h*W + w
        assert float(attention[:, padded, 1::2].abs().max()) == 0.0  # odd: caption 1's mask
        assert float(attention[1, padded, 0::2].min()) > 0.0  # even: caption 0's, no padding
        aligned = own.attention[i - 1].flatten(2)
        assert float(aligned[1, padded].abs().max()) == 0.0  # the padded caption: never
        assert float(aligned[0, padded, 1::2].min()) > 0.0  # the full caption: everywhere
    diffs = _g_diffs(own, io)
    assert diffs["out.attention.1"] > 0.1 and diffs["out.attention.2"] > 0.1, diffs
    assert diffs["out.image.1"] > 1e-3 and diffs["out.image.2"] > 1e-3, diffs
    assert diffs["out.image.0"] <= TOL


def test_the_duplicated_response_is_the_references(reg, run_dir, io):
    """Quirk: h' is concatenated with itself before the ResBlocks (`duplicate_response: true`,
    the import's); false ([h' ; o]) changes stages 2 and 3."""
    other = rebuild(run_dir, reg, [f"{p}.duplicate_response=false" for p in MEMORY])
    diffs = _g_diffs(_generate(other.generator, io), io)
    assert diffs["out.image.1"] > 1e-3 and diffs["out.image.2"] > 1e-3, diffs
    assert diffs["out.image.0"] <= TOL


def test_the_recipe_is_the_builtin_dmgan_with_the_reference_quirks(reg, run_dir):
    recipe = load_run_recipe(run_dir, reg)
    assert recipe.name == "dmgan-cub-import" and recipe.matcher is None
    assert recipe.text_encoder.type == "damsm_rnn"
    stages = recipe.generator.params["stages"]
    for stage in stages[1:]:
        assert stage["params"]["conditioning"]["type"] == "words"
        fusion = stage["params"]["fusion"]
        assert fusion["type"] == "dynamic_memory"
        assert fusion["params"] == {
            "detach_global": True,
            "duplicate_response": True,
            "reference_mask_layout": True,
            "sdpa": False,  # a speed switch (issue 22), off as in every run before it
        }
    for d in recipe.discriminators:
        p = d.resolved
        assert (p.norm, p.spectral_norm, p.df, p.text_dim) == ("spectral", "reference", 2, 16)
        assert p.uncond_head and p.cond_head and p.conditioning.type == "sentence"
    assert [d.resolved.resolution for d in recipe.discriminators] == [64, 128, 256]
    assert recipe.train.precision == "fp32"  # the built-in CUB recipe's, kept


@pytest.mark.parametrize("where", ["cub", "coco"])
def test_the_paper_recipes_set_the_reference_behaviour(reg, where):
    """Issue 19: the paper recipes reproduce the reference's arithmetic where the released
    weights depend on it, as the import does (the parameter counts do not change)."""
    recipe = load_recipe(f"builtin:{where}/dmgan.yaml", registry=reg)
    for stage in recipe.generator.params["stages"][1:]:
        assert stage["params"]["fusion"]["params"]["reference_mask_layout"] is True
    assert [d.resolved.spectral_norm for d in recipe.discriminators] == ["reference"] * 3
    assert recipe.matcher.resolved.resize_align_corners is True


def test_with_the_image_encoder_the_matcher_resizes_as_dm_gans_cnn_encoder(
    reg, files, made_release_files, io, tmp_path
):
    """Quirk: DM-GAN's CNN_ENCODER resizes with align_corners=True; the import sets
    `resize_align_corners: true`, which gives the DAMSM fixture's `ac_true` regions and code,
    and false (AttnGAN's) does not."""
    given = [*files, made_release_files["image_encoder"]]
    out = import_release("dmgan", given, tmp_path / "run", reg, quiet)
    run = load_run(out, registry=reg)
    params = run.recipe.matcher.resolved
    assert params.backbone == "inception_checkpoint" and params.resize_align_corners is True
    assert [(s.type, s.stages, s.weight) for s in run.recipe.losses][2:] == [
        ("word_region_matching", [2], 5.0),
        ("sentence_matching", [2], 5.0),
    ]
    damsm = io_tensors(DAMSM)
    with torch.no_grad(), reference_threads():
        image = run.matcher.encode_image(damsm["in.images"])
        text = run.matcher.encode_text(damsm["in.captions"], damsm["in.mask_real"])
    regions = image.regions.reshape(2, 16, 17, 17)
    with torch.no_grad():  # the imported head on the reference's own trunk output: exact
        code = run.matcher.image.code_proj(damsm["out.trunk.pooled.ac_true"])
    assert max_diff(code, damsm["out.code.ac_true"]) <= TOL
    # end to end through the random trunk, whose rounding differs between CPU kinds
    # (test_damsm_release.TRUNK_TOL says why)
    assert max_diff(regions, damsm["out.regions.ac_true"]) <= 1e-3
    assert max_diff(image.code, damsm["out.code.ac_true"]) <= 1e-3
    assert max_diff(text.sentence, damsm["out.sent_emb"]) <= TOL
    assert max_diff(regions, damsm["out.regions.ac_false"]) > 0.1
    assert max_diff(image.code, damsm["out.code.ac_false"]) > 0.01
    with torch.no_grad():
        images = run.generator(io["in.z"], io["in.eps"], _text(io)).images
    assert max_diff(images[2], io["out.image.2"]) <= TOL


def test_auto_tells_dmgan_by_its_damsm_and_refuses_to_guess_from_g_net_alone(
    reg, files, made_release_files, tmp_path, capsys
):
    loaded = [read_release_file(p) for p in files]
    family, _, release = choose_importer("auto", loaded, reg)
    assert family == "dmgan" and release.startswith(RELEASE)
    assert "told by D_NET128 with UNCOND_DNET, a DAMSM text encoder (text_encoder.pth)" in release
    g, text = loaded[0], loaded[2]
    assert choose_importer("auto", [g, text, loaded[3]], reg)[0] == "dmgan"  # the DAMSM tells
    image = read_release_file(made_release_files["image_encoder"])
    assert choose_importer("auto", [*loaded, image], reg)[0] == "dmgan"
    with pytest.raises(T2IError) as info:  # a bare G_NET: DM-GAN's and GR-GAN's are the same
        choose_importer("auto", [g], reg)
    (line,) = str(info.value).splitlines()
    assert "could be more than one release (dmgan: DM-GAN " in line
    assert "; grgan: GR-GAN " in line and line.count("from G_NET alone") == 2
    for other in ("attngan", "damsm", "dfgan", "grgan"):
        assert reg.build("importer", Slot(type=other)).identify(loaded) is None, other
    grgan = [read_release_file(GRGAN / "netG.pth"), read_release_file(GRGAN / "netD1.pth")]
    assert choose_importer("auto", grgan, reg)[0] == "grgan"  # no UNCOND_DNET: GR-GAN's D
    assert reg.build("importer", Slot(type="dmgan")).identify(grgan) is None
    out = tmp_path / "cli"
    assert main(["import", "auto", *map(str, files), "--out", str(out)]) == 0
    assert f"import: dmgan ({RELEASE}; told by" in capsys.readouterr().err
    assert (out / "checkpoints" / "step_00000000" / "discriminator_1.safetensors").is_file()


def test_a_damsm_text_side_run_is_evidence_and_imports_as_the_alternative(reg, files, io, tmp_path):
    """identify and convert agree: the recipe.resolved.yaml of a damsm text-side run counts as
    DM-GAN evidence and `import dmgan` takes it in place of the DAMSM files (text_side, as
    dfgan does), its matcher set to DM-GAN's resize; a run of another text side is neither."""
    damsm = text_side_run(
        reg,
        tmp_path / "damsm",
        "builtin:dfgan.yaml",
        ["matcher.params.text_dim=16", "matcher.params.embedding_dim=8"],
    )
    g = read_release_file(DMGAN / "netG.pth")
    family, _, release = choose_importer("auto", [g, read_release_file(damsm)], reg)
    assert family == "dmgan" and "told by text side 'damsm'" in release
    out = import_release("auto", [DMGAN / "netG.pth", damsm], tmp_path / "run", reg, quiet)
    record = json.loads((out / "import.json").read_text())
    assert record["family"] == "dmgan" and "text side matcher 'damsm'" in record["release"]
    assert record["components"]["matcher"]["from"].endswith("matcher.safetensors")
    recipe = load_run_recipe(out, reg)
    assert recipe.matcher.type == "damsm" and recipe.matcher.resolved.resize_align_corners
    assert [s.type for s in recipe.losses][2:] == ["word_region_matching", "sentence_matching"]
    with torch.no_grad():
        out_g = _generate(rebuild(out, reg).generator, io)
    assert max_diff(out_g.images[2], io["out.image.2"]) <= TOL
    with pytest.raises(T2IError, match=r"^import dmgan: give one text side, the DAMSM files"):
        import_release("dmgan", [*files, damsm], tmp_path / "both", reg, quiet)
    wide = text_side_run(reg, tmp_path / "wide", "builtin:dfgan.yaml", [])  # text_dim 64
    with pytest.raises(T2IError, match="text features of size 64; the dmgan generator takes 16"):
        import_release("dmgan", [DMGAN / "netG.pth", wide], tmp_path / "wide-run", reg, quiet)
    clip = tmp_path / "clip" / "recipe.resolved.yaml"
    clip.parent.mkdir()
    clip.write_text("matcher: {type: clip, params: {}}\n")
    with pytest.raises(T2IError) as info:  # no evidence either way: refused, not guessed
        choose_importer("auto", [g, read_release_file(clip)], reg)
    assert str(info.value).count("from G_NET alone") == 2


def test_a_file_that_does_not_fit_is_one_line_naming_it_and_the_release(reg, files, tmp_path):
    sd = torch.load(DMGAN / "netG.pth", weights_only=True)
    sd["h_net2.key.0.weight"] = torch.zeros(4, 16, 1)  # (gf, 2gf, 1) is (4, 8, 1)
    del sd["h_net3.upsample.2.running_var"]
    bad = tmp_path / "netG_epoch_600.pth"
    torch.save(sd, bad, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("auto", [bad, *files[1:]], tmp_path / "run", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{bad}: does not fit {RELEASE}")
    assert "'stages.1.fusion.key.0.weight' has shape (4, 16, 1) where (4, 8, 1)" in line
    assert "'stages.2.upsample.2.running_var' is missing" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_grgan_d_a_missing_text_side_and_another_nef_are_one_line_errors(reg, files, tmp_path):
    d = torch.load(DMGAN / "netD1.pth", weights_only=True)
    gr = {k: v for k, v in d.items() if not k.startswith("UNCOND_DNET.")}
    path = tmp_path / "netD1.pth"
    torch.save(gr, path, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("dmgan", [files[0], path, *files[2:]], tmp_path / "a", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{path}: D_NET128 without UNCOND_DNET") and "GR-GAN's layout" in line
    with pytest.raises(T2IError) as info:
        import_release("dmgan", files[:2], tmp_path / "b", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert "netG.pth has no text side" in line
    assert "text_encoder*.pth" in line and "captions.pickle" in line
    with pytest.raises(T2IError, match="no captions.pickle among the files") as info:
        import_release("dmgan", files[:3], tmp_path / "c", reg, quiet)
    assert "\n" not in str(info.value)
    sd = torch.load(DMGAN / "netG.pth", weights_only=True)
    sd["ca_net.fc.weight"] = torch.zeros(48, 8)  # nef 8: the text encoder gives 16
    other = tmp_path / "netG.pth"
    torch.save(sd, other, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("dmgan", [other, *files[2:]], tmp_path / "d", reg, quiet)
    assert str(info.value) == (
        f"{DAMSM / 'text_encoder.pth'}: gives nef 16 but netG.pth reads nef 8; give the text "
        "encoder the generator was trained with"
    )


def test_the_imported_run_exports_to_onnx_with_parity_and_generates(reg, run_dir, tmp_path):
    from t2i_stages.export.api import export_run

    res = export_run(run_dir, registry=reg, exporter="torchscript", parity_batches=[2])
    assert res.manifest["parity"]["fp32"]["cases"]  # a parity failure raises
    for source in (["--onnx", str(res.folder), "--provider", "cpu"], ["--model", str(run_dir)]):
        png = tmp_path / f"{source[0][2:]}.png"
        argv = ["generate", *source, "--text", "a red bird with white wings", "--n", "2"]
        assert main([*argv, "--out", str(png)]) == 0 and png.is_file()
