"""Golden parity of `t2i-stages import attngan` with AttnGAN's own code (taoxugit/AttnGAN 0d000e6).

The fixture (tests/fixtures/reference/attngan, see its README.md and reference.json) is the
reference's G_NET and D_NET128 run at a tiny config (gf 4, df 2, nef 16, z 10, c_dim 12,
R_NUM 1, 3 stages, batch 2 with one padded caption). Its legacy .pth files are imported through
the real path (``import_release``), with the DAMSM fixture's text encoder and a captions.pickle
made at test time, rebuilt by ``load_run``, and fed the reference's inputs: every stage's image,
the attention maps, mu/logvar and the D's features and logits agree to 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch
from reference_release import ATTNGAN, DAMSM, REFERENCE, io_tensors, max_abs, quiet

from t2i_stages.api import load_run, load_run_recipe
from t2i_stages.build import assemble
from t2i_stages.checkpoint import latest_good_checkpoint
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.importing.api import choose_importer, import_release
from t2i_stages.importing.legacy import read_release_file
from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry
from t2i_stages.types import TextFeatures

TOL = 1e-5
RELEASE = (
    "AttnGAN (taoxugit/AttnGAN): netG with 3 stages (64-256 px), gf 4, nef 16, "
    "z_dim 10, c_dim 12, R_NUM 1"
)


@pytest.fixture(scope="module")
def io():
    return io_tensors(ATTNGAN)


@pytest.fixture(scope="module")
def files(made_release_files):
    """The release without its image encoder: netG, the 128 px D, the DAMSM text encoder."""
    netg, netd = ATTNGAN / "netG.pth", ATTNGAN / "netD1.pth"
    return [netg, netd, DAMSM / "text_encoder.pth", made_release_files["captions"]]


@pytest.fixture(scope="module")
def run_dir(reg, files, tmp_path_factory):
    return import_release("attngan", files, tmp_path_factory.mktemp("attngan") / "run", reg, quiet)


@pytest.fixture(scope="module")
def run(reg, run_dir):
    return load_run(run_dir, registry=reg)


def reference_text(io) -> TextFeatures:
    """The fixture's text in the framework's convention (mask True = real word)."""
    mask = io["in.mask_real"]
    assert torch.equal(mask, ~io["in.mask_padding"])
    return TextFeatures(io["in.words_embs"], io["in.sent_emb"], mask, mask.sum(dim=1))


def test_every_stage_of_the_imported_netG_matches_the_reference(run, io):
    G = run.generator
    seen = {}
    hooks = [
        G.stages[0].conditioning.register_forward_hook(lambda m, a, out: seen.update(c=out)),
        G.stages[0].upsample.register_forward_hook(lambda m, a, out: seen.update(h0=out)),
        G.stages[1].fusion.project.register_forward_hook(lambda m, a, out: seen.update(p1=out)),
        G.stages[2].fusion.project.register_forward_hook(lambda m, a, out: seen.update(p2=out)),
    ]
    with torch.no_grad():
        out = G(io["in.z"], io["in.eps"], reference_text(io))
    for h in hooks:
        h.remove()
    assert not G.training
    for i in range(3):
        assert max_abs(out.images[i], io[f"out.image.{i}"]) <= TOL, f"image {i}"
    for i in (1, 2):  # (B, T, H, W) at the stage's input resolution, softmax over words
        assert max_abs(out.attention[i - 1], io[f"out.attention.{i}"]) <= TOL, f"attention {i}"
    assert max_abs(out.mu, io["out.mu"]) <= TOL and max_abs(out.logvar, io["out.logvar"]) <= TOL
    assert max_abs(seen["c"].vector, io["out.c_code"]) <= TOL  # c = mu + exp(logvar / 2) eps
    assert max_abs(seen["h0"], io["out.h_code.0"]) <= TOL
    assert max_abs(seen["p1"], io["out.att.1.words_proj"]) <= TOL
    assert max_abs(seen["p2"], io["out.att.2.words_proj"]) <= TOL
    train = copy.deepcopy(G).train()  # the reference trains G in train mode (batch statistics)
    with torch.no_grad():
        image = train(io["in.z"], io["in.eps"], reference_text(io)).images[0]
    assert max_abs(image, io["out.train.image.0"]) <= TOL
    assert max_abs(image, io["out.image.0"]) > 1e-2  # the two modes are told apart


def _discriminator(reg, run_dir):
    recipe = load_run_recipe(run_dir, reg)
    built = assemble(recipe, reg, parts=["discriminators"])
    ckpt = latest_good_checkpoint(run_dir / "checkpoints")
    d = built.discriminators[1]
    d.load_state_dict(ckpt.components["discriminator_1"], strict=True)
    return d


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_imported_netD_matches_the_reference_in_both_modes(reg, run_dir, io, mode):
    d = _discriminator(reg, run_dir)
    d.train(mode == "train")  # the reference never calls netD.eval(): train is its training
    tag = "out.d." if mode == "eval" else "out.d.train."
    text = reference_text(io)
    with torch.no_grad():
        features = d(io["out.image.1"])
        uncond = d.uncond_logits(features)
        cond = d.cond_logits(features, d.condition(text))  # the raw sentence, as COND_DNET
    assert max_abs(features, io[tag + "features"]) <= TOL
    assert max_abs(uncond, io[tag + "uncond_logits"]) <= TOL
    assert max_abs(cond, io[tag + "cond_logits"]) <= TOL
    # the reference's heads end in a Sigmoid; ours give logits (BCE-with-logits: the same loss)
    assert max_abs(torch.sigmoid(uncond), io[tag + "uncond_prob"]) <= TOL
    assert max_abs(torch.sigmoid(cond), io[tag + "cond_prob"]) <= TOL


def test_reference_mask_layout_is_needed_and_its_default_masks_each_caption_by_its_own(
    reg, run_dir, run, io
):
    """The import switches the masking bug on (AttnGAN#93); the default (false) differs."""
    recipe = load_run_recipe(run_dir, reg)
    stages = recipe.generator.params["stages"]
    assert all(s["params"]["fusion"]["params"]["reference_mask_layout"] for s in stages[1:])
    sets = [
        f"generator.params.stages.{i}.params.fusion.params.reference_mask_layout=false"
        for i in (1, 2)
    ]
    fixed = reg.build("generator", load_recipe(run_dir / "import.recipe.yaml", sets, reg).generator)
    fixed.load_state_dict(run.generator.state_dict())
    fixed.eval()
    text = reference_text(io)
    with torch.no_grad():
        ours = run.generator(io["in.z"], io["in.eps"], text)
        correct = fixed(io["in.z"], io["in.eps"], text)
    ref = io["out.attention.1"]
    odd = torch.arange(64 * 64).reshape(64, 64) % 2 == 1  # flattened pixel index h*W + w
    padded = slice(3, 6)  # caption 1 has 3 words; caption 0 has 6
    # the reference: pixel q takes caption (q mod 2)'s mask, so at odd pixels caption 0 loses its
    # words 3-5 and at even pixels caption 1 attends to its padding
    assert float(ref[0, padded][:, odd].abs().max()) == 0.0
    assert float(ref[1, padded][:, ~odd].abs().max()) > 0.1
    assert max_abs(ours.attention[0], ref) <= TOL
    # the default: every caption is masked by its own mask
    assert float(correct.attention[0][1, padded].abs().max()) == 0.0
    assert float(correct.attention[0][0, padded][:, odd].abs().max()) > 0.1
    assert max_abs(correct.attention[0], ref) > 0.1
    assert max_abs(correct.images[2], io["out.image.2"]) > 1e-3


def test_with_the_image_encoder_the_run_matcher_is_the_released_damsm(
    reg, files, made_release_files, io, tmp_path
):
    with_image = [*files, made_release_files["image_encoder"]]
    out = import_release("attngan", with_image, tmp_path / "run", reg, quiet)
    recipe = load_run_recipe(out, reg)
    assert recipe.text_encoder is None and recipe.matcher.type == "damsm"
    params = recipe.matcher.resolved
    assert params.backbone == "inception_checkpoint" and params.resize_align_corners is False
    assert [(s.type, s.stages, s.weight) for s in recipe.losses][2:] == [
        ("word_region_matching", [2], 5.0),
        ("sentence_matching", [2], 5.0),
    ]
    run = load_run(out, registry=reg)
    assert run.text_encoder is run.matcher
    damsm = io_tensors(DAMSM)
    with torch.no_grad():
        text = run.matcher.encode_text(damsm["in.captions"], damsm["in.mask_real"])
        images = run.generator(io["in.z"], io["in.eps"], reference_text(io)).images
    assert max_abs(text.sentence, damsm["out.sent_emb"]) <= TOL
    assert max_abs(images[2], io["out.image.2"]) <= TOL


def test_a_two_stage_netG_imports_as_two_stages(reg, files, io, tmp_path):
    """cfg.TREE.BRANCH_NUM 2: its stages match the reference (later ones do not feed back)."""
    sd = torch.load(ATTNGAN / "netG.pth", weights_only=True)
    two = {k: v for k, v in sd.items() if not k.startswith(("h_net3.", "img_net3."))}
    path = tmp_path / "netG.pth"
    torch.save(two, path, _use_new_zipfile_serialization=False)
    out = import_release("attngan", [path, *files[1:]], tmp_path / "run", reg, quiet)
    run = load_run(out, registry=reg)
    assert run.generator.resolutions == [64, 128] and len(run.recipe.discriminators) == 2
    with torch.no_grad():
        got = run.generator(io["in.z"], io["in.eps"], reference_text(io))
    assert max_abs(got.images[1], io["out.image.1"]) <= TOL
    assert max_abs(got.attention[0], io["out.attention.1"]) <= TOL


def reference_discriminator(resolution: int, df: int, nef: int) -> dict[str, torch.Tensor]:
    """A D_NET64 / D_NET256 state dict with the names and shapes of AttnGAN's model.py (BN
    without num_batches_tracked, as torch 0.4.0 saved it), random values."""
    convs = {  # name -> (out, in, kernel); each but the first is followed by a BatchNorm
        "img_code_s16.0": (df, 3, 4),
        "img_code_s16.2": (2 * df, df, 4),
        "img_code_s16.5": (4 * df, 2 * df, 4),
        "img_code_s16.8": (8 * df, 4 * df, 4),
    }
    if resolution == 256:
        convs.update(
            {
                "img_code_s32.0": (16 * df, 8 * df, 4),
                "img_code_s64.0": (32 * df, 16 * df, 4),
                "img_code_s64_1.0": (16 * df, 32 * df, 3),
                "img_code_s64_2.0": (8 * df, 16 * df, 3),
            }
        )
    convs["COND_DNET.jointConv.0"] = (8 * df, 8 * df + nef, 3)
    sd = {}
    for name, (out, cin, k) in convs.items():
        sd[f"{name}.weight"] = torch.randn(out, cin, k, k)
        if name == "img_code_s16.0":
            continue
        head, index = name.rsplit(".", 1)
        bn = f"{head}.{int(index) + 1}"
        sd[f"{bn}.weight"], sd[f"{bn}.bias"] = torch.rand(out) + 0.5, torch.randn(out)
        sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"] = torch.randn(out), torch.rand(out) + 0.5
    for head in ("UNCOND_DNET", "COND_DNET"):
        sd[f"{head}.outlogits.0.weight"] = torch.randn(1, 8 * df, 4, 4)
        sd[f"{head}.outlogits.0.bias"] = torch.randn(1)
    return sd


def test_the_64_and_256_px_discriminators_map_onto_their_stages(reg, files, tmp_path):
    made = {}
    for stage, resolution in ((0, 64), (2, 256)):
        made[stage] = reference_discriminator(resolution, df=2, nef=16)
        torch.save(made[stage], tmp_path / f"netD{stage}.pth", _use_new_zipfile_serialization=False)
    given = [*files, tmp_path / "netD0.pth", tmp_path / "netD2.pth"]
    out = import_release("auto", given, tmp_path / "run", reg, quiet)
    ckpt = latest_good_checkpoint(out / "checkpoints")
    assert {f"discriminator_{i}" for i in range(3)} <= set(ckpt.components)
    d0, d2 = ckpt.components["discriminator_0"], ckpt.components["discriminator_2"]
    assert torch.equal(d0["trunk.4.1.running_var"], made[0]["img_code_s16.9.running_var"])
    assert torch.equal(d2["trunk.8.0.weight"], made[2]["img_code_s64_2.0.weight"])
    assert torch.equal(d2["cond_joint.1.bias"], made[2]["COND_DNET.jointConv.1.bias"])
    assert len(d2) == len(made[2]) + 8  # + num_batches_tracked of its 8 BatchNorms


def test_auto_picks_attngan_and_the_cli_writes_the_run(files, made_release_files, tmp_path, capsys):
    loaded = [read_release_file(p) for p in files]
    reg = load_registry()
    assert choose_importer("auto", loaded, reg)[0] == "attngan"
    with_image = loaded + [read_release_file(made_release_files["image_encoder"])]
    assert choose_importer("auto", with_image, reg)[0] == "attngan"
    out = tmp_path / "cli"
    assert main(["import", "auto", *map(str, files), "--out", str(out)]) == 0
    assert f"import: attngan ({RELEASE})" in capsys.readouterr().err
    assert (out / "checkpoints" / "step_00000000" / "discriminator_1.safetensors").is_file()
    # a DM-GAN netG (h_net2.A, B, M_r, ... instead of h_net2.att) is not AttnGAN's
    dmgan = [read_release_file(REFERENCE / "dmgan" / "netG.pth"), *loaded[2:]]
    assert reg.build("importer", _slot("attngan")).identify(dmgan) is None
    assert reg.build("importer", _slot("damsm")).identify(loaded) is None  # a G is not a DAMSM


def _slot(name: str):
    from t2i_stages.recipe.slots import Slot

    return Slot(type=name)


def test_a_netG_that_does_not_fit_is_one_line_naming_the_file_and_the_release(reg, files, tmp_path):
    sd = torch.load(ATTNGAN / "netG.pth", weights_only=True)
    sd["h_net2.residual.0.block.0.weight"] = torch.zeros(16, 8, 1, 1)
    del sd["h_net3.upsample.2.running_var"]
    bad = tmp_path / "netG_epoch_600.pth"
    torch.save(sd, bad, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("auto", [bad, *files[1:]], tmp_path / "run", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{bad}: does not fit {RELEASE}")
    assert (
        "'stages.1.residual.0.block.0.weight' has shape (16, 8, 1, 1) where (16, 8, 3, 3)" in line
    )
    assert "'stages.2.upsample.2.running_var' is missing" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_G_DCGAN_is_refused_in_one_line(reg, files, tmp_path):
    """AttnGAN's G_DCGAN (B_DCGAN) has one shared img_net: not a G_NET, not importable."""
    sd = torch.load(ATTNGAN / "netG.pth", weights_only=True)
    dcgan = {k: v for k, v in sd.items() if not k.startswith("img_net")}
    dcgan["img_net.img.0.weight"] = sd["img_net3.img.0.weight"]
    path = tmp_path / "netG.pth"
    torch.save(dcgan, path, _use_new_zipfile_serialization=False)
    given = [path, *files[1:]]
    with pytest.raises(T2IError, match="no importer recognises"):
        import_release("auto", given, tmp_path / "auto", reg, quiet)
    with pytest.raises(T2IError) as info:
        import_release("attngan", given, tmp_path / "run", reg, quiet)
    assert str(info.value) == (
        f"{path}: has no 'img_net1.img.0.weight'; not an AttnGAN G_NET state dict"
    )


def test_a_netG_alone_says_which_files_to_add(reg, files, tmp_path):
    with pytest.raises(T2IError) as info:
        import_release("attngan", files[:2], tmp_path / "run", reg, quiet)
    (line,) = str(info.value).splitlines()
    assert "netG.pth has no text side" in line
    assert "text_encoder*.pth" in line and "captions.pickle" in line
    with pytest.raises(T2IError, match="no captions.pickle among the files") as info:
        import_release("attngan", files[:3], tmp_path / "run", reg, quiet)
    assert "\n" not in str(info.value)


def test_a_text_encoder_of_another_size_is_refused(reg, files, tmp_path):
    hidden = 4  # nef 8: an LSTM direction has 4 gate blocks of 4 units
    rnn = {
        "weight_ih_l0": (16, 300),
        "weight_hh_l0": (16, hidden),
        "bias_ih_l0": (16,),
        "bias_hh_l0": (16,),
    }
    sd = {"encoder.weight": torch.zeros(30, 300)}
    for name, shape in rnn.items():
        sd[f"rnn.{name}"] = sd[f"rnn.{name}_reverse"] = torch.zeros(shape)
    other = tmp_path / "text_encoder100.pth"
    torch.save(sd, other, _use_new_zipfile_serialization=False)
    with pytest.raises(T2IError) as info:
        import_release("attngan", [*files[:2], other, files[3]], tmp_path / "run", reg, quiet)
    assert str(info.value) == (
        f"{other}: gives nef 8 but netG.pth reads nef 16; give the text encoder the generator "
        "was trained with"
    )


def test_the_imported_run_exports_to_onnx_with_parity_and_generates(run_dir, reg, tmp_path):
    from t2i_stages.export.api import export_run

    res = export_run(run_dir, registry=reg, exporter="torchscript", parity_batches=[2])
    assert res.manifest["parity"]["fp32"]["cases"]  # a parity failure raises
    for source in (["--onnx", str(res.folder), "--provider", "cpu"], ["--model", str(run_dir)]):
        png = tmp_path / f"{source[0][2:]}.png"
        argv = ["generate", *source, "--text", "a red bird with white wings", "--n", "2"]
        assert main([*argv, "--out", str(png)]) == 0 and png.is_file()
