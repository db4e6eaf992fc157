"""`export --attention` (issue 20, point 1): each refinement stage's word-attention map as a
graph output, parity-checked like the images, listed in model.json; the default export is
unchanged; DF-GAN is refused; the runtime's run_all / describe_tokens, also standalone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from export_helpers import REPO, untrained_run
from hypothesis import given, settings
from hypothesis import strategies as st
from test_export_runtime import _run_blocked

from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.export import runtime as rt
from t2i_stages.export.api import export_run
from t2i_stages.text import WordVocab

STYLES = ["attngan", "grgan"]  # word attention (fused, dynamo, fp16); dynamic memory (split)
CAPTIONS = ["a red circle at the top left", "", "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", "zzz blue"]


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _last_graph(folder, manifest, precision="fp32"):
    graphs = manifest["graphs"][precision]
    entry = graphs.get("fused") or graphs["generator"]
    return onnx.load(str(folder / entry["file"]))


@pytest.mark.parametrize("style", STYLES)
def test_attention_outputs_are_listed_and_hold_parity_like_the_images(micro_export, style):
    d = micro_export(style)
    m, g = d.result.manifest, d.generator
    stages = list(range(1, len(g.resolutions)))  # every refine stage of these attends
    names = [f"attention_{s}" for s in stages]
    assert [a["output"] for a in m["attention"]] == names
    for entry, s in zip(m["attention"], stages, strict=True):
        # the map is at the stage's input resolution (the previous stage's), as computed
        assert entry["stage"] == s and entry["resolution"] == g.resolutions[s - 1]
        assert entry["image_resolution"] == g.resolutions[s]
        assert entry["words"] == "token slots of token_ids/token_mask"
    images = [f"image_{i}" for i in range(len(g.resolutions))]
    assert [o["name"] for o in m["outputs"]] == images + names
    for precision in m["precisions"]:
        rep = m["parity"][precision]
        assert rep["passed"] is True
        tol = (1e-3, 1e-2) if precision == "fp16" else (1e-3, 1e-5)
        assert (rep["rtol"], rep["atol"]) == tol  # the images' tolerance policy
        for case in rep["cases"]:
            compared = [o["name"] for o in case["outputs"]]
            assert compared[-len(names) :] == names and set(images) <= set(compared)
            assert all(o["passed"] and o["finite"] for o in case["outputs"])
        assert any(0 in c["lengths"] for c in rep["cases"])  # a fully padded caption too
        graph = _last_graph(d.folder, m, precision)
        outs = {o.name: _dims(o) for o in graph.graph.output}
        assert list(outs) == images + names
        for s, name in zip(stages, names, strict=True):
            r = g.resolutions[s - 1]
            assert outs[name] == ["batch", "T", r, r]
            assert graph.graph.output[len(images) + s - 1].type.tensor_type.elem_type == (
                onnx.TensorProto.FLOAT
            )


@pytest.mark.parametrize("style", STYLES)
def test_run_all_gives_pytorch_attention_on_unseen_shapes(micro_export, style):
    d = micro_export(style)
    dep = rt.load_deployment(d.folder, "cpu")
    assert dep.has_attention and dep.attention_stages == list(range(1, len(d.generator.stages)))
    ids, mask = dep.tokenize(CAPTIONS)
    z, eps = rt.draw_noise(len(CAPTIONS), dep.z_dim, dep.eps_dim, seed=3)
    out = dep.run_all(ids, mask, z, eps)
    with torch.no_grad():
        text = d.encoder.encode_text(torch.from_numpy(ids), torch.from_numpy(mask))
        want = d.generator(torch.from_numpy(z), torch.from_numpy(eps), text)
    assert isinstance(out, rt.RunOutputs) and sorted(out.attention) == dep.attention_stages
    for a, b in zip(out.images, want.images, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-5)
    for s, attn in out.attention.items():
        r = d.generator.resolutions[s - 1]
        assert attn.shape == (len(CAPTIONS), d.max_words, r, r) and attn.dtype == np.float32
        np.testing.assert_allclose(attn, want.attention[s - 1].numpy(), rtol=1e-3, atol=1e-5)
        assert (attn[~mask] == 0).all()  # padded slots: exactly 0, as masked_softmax gives
        assert (attn[1] == 0).all()  # the fully padded caption reads nothing
        np.testing.assert_allclose(attn[0].sum(0), 1.0, atol=1e-5)  # a softmax over the words
    # run() still gives the images alone, the same ones; IO binding gives the same maps
    plain = dep.run(ids, mask, z, eps)
    assert len(plain) == len(d.generator.resolutions)
    for a, b in zip(plain, out.images, strict=True):
        np.testing.assert_array_equal(a, b)
    bound = rt.load_deployment(d.folder, "cpu", io_binding=True).run_all(ids, mask, z, eps)
    for s in out.attention:
        np.testing.assert_array_equal(bound.attention[s], out.attention[s])
    assert dep.generate(CAPTIONS[:1])[-1].shape == out.images[-1][:1].shape


def test_fp16_graphs_carry_the_attention_outputs(micro_export):
    d = micro_export("attngan")
    full = rt.load_deployment(d.folder, "cpu")
    half = rt.load_deployment(d.folder, "cpu", precision="fp16")
    ids, mask = full.tokenize(CAPTIONS)
    z, eps = rt.draw_noise(len(CAPTIONS), full.z_dim, full.eps_dim, seed=1)
    a, b = full.run_all(ids, mask, z, eps), half.run_all(ids, mask, z, eps)
    assert sorted(b.attention) == sorted(a.attention) == [1]
    assert b.attention[1].dtype == np.float32  # cast back inside the graph (keep_io_types)
    np.testing.assert_allclose(b.attention[1], a.attention[1], atol=1e-2)


def test_the_default_export_is_unchanged(micro_export):
    """No --attention: the graphs output the images alone and model.json has the keys it had."""
    d = micro_export("dmgan")
    m = d.result.manifest
    images = [f"image_{i}" for i in range(len(d.generator.resolutions))]
    gen = onnx.load(str(d.folder / "generator.onnx"))
    assert [o.name for o in gen.graph.output] == images
    assert m["graphs"]["fp32"]["generator"]["outputs"] == images
    assert [o["name"] for o in m["outputs"]] == images
    assert set(m) == {
        "format",
        "format_version",
        "contract",
        "layout",
        "exporter",
        "graph_rewrites",
        "opset",
        "precisions",
        "z_dim",
        "eps_dim",
        "text_dim",
        "resolutions",
        "inputs",
        "outputs",
        "graphs",
        "tokenizer",
        "noise",
        "source",
        "versions",
        "plugins",
        "parity",
        "files",
    }
    assert m["contract"] == "(token_ids, token_mask, z, eps) -> image_0..image_{S-1} in [-1, 1]"
    assert not (d.folder / "triton").exists()
    for case in m["parity"]["fp32"]["cases"]:
        assert [o["name"] for o in case["outputs"]] == ["words", "sentence", *images]
    dep = rt.load_deployment(d.folder, "cpu")
    assert not dep.has_attention and dep.attention_stages == []
    ids, mask = dep.tokenize(CAPTIONS)
    z, eps = rt.draw_noise(len(CAPTIONS), dep.z_dim, dep.eps_dim, seed=0)
    out = dep.run_all(ids, mask, z, eps)
    assert out.attention == {}
    for a, b in zip(out.images, dep.run(ids, mask, z, eps), strict=True):
        np.testing.assert_array_equal(a, b)


DFGAN_MICRO = [
    "generator.params.nf=4",
    "generator.params.resolution=16",
    "generator.params.text_dim=16",
    "matcher.params.text_dim=16",
    "matcher.params.embedding_dim=8",
    "discriminators.0.params.text_dim=16",
]


def test_a_generator_without_word_attention_is_refused(registry, tmp_path, capsys):
    run = untrained_run(registry, tmp_path / "dfgan", REPO / "recipes" / "dfgan.yaml", DFGAN_MICRO)
    out = tmp_path / "deploy"
    assert main(["export", str(run), "--out", str(out), "--attention"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: --attention: generator 'dfgan' (DFGANGenerator) has no word ")
    assert not out.exists()
    with pytest.raises(T2IError, match="has no word attention"):
        export_run(run, tmp_path / "api", attention=True)
    res = export_run(run, out, exporter="torchscript")  # without it the export works
    assert "attention" not in res.manifest


def test_cli_attention_on_a_trained_run(micro_run, tmp_path, capsys):
    out = tmp_path / "deploy"
    args = ["export", str(micro_run), "--out", str(out), "--exporter", "torchscript"]
    assert main([*args, "--attention"]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "model.json").read_text())
    assert [(a["output"], a["resolution"]) for a in m["attention"]] == [("attention_1", 16)]
    assert "attention_1: stage 1, 16 px" in printed
    assert m["graphs"]["fp32"]["generator"]["outputs"] == ["image_0", "image_1", "attention_1"]
    assert m["parity"]["fp32"]["passed"]


VOCAB = WordVocab.build(["a red circle at the top", "two blue squares below"])


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet="abcdeopqrstuvwxyz ,", max_size=60), max_words=st.integers(1, 8))
def test_describe_tokens_is_what_encode_feeds_the_model(text, max_words):
    tok = rt.WordTokenizer(VOCAB.itos)
    slots = tok.describe_tokens(text, max_words)
    ids, mask = tok.encode(text, max_words)
    assert [s["id"] for s in slots] == [i for i, m in zip(ids, mask, strict=True) if m]
    assert all(s["known"] == (s["word"] in VOCAB.stoi) for s in slots)
    assert all(s["known"] or s["id"] == VOCAB.stoi["<unk>"] for s in slots)
    assert tok.count_tokens(text) == len(rt.tokenize_words(text))  # <unk> keeps every word
    assert len(slots) == min(max_words, tok.count_tokens(text))


def test_describe_tokens_flags_unknown_and_leaves_out_truncated_words():
    tok = rt.WordTokenizer(VOCAB.itos)
    slots = tok.describe_tokens("A red BLORB circle at the top", 4)
    assert slots == [
        {"word": "a", "id": VOCAB.stoi["a"], "known": True},
        {"word": "red", "id": VOCAB.stoi["red"], "known": True},
        {"word": "blorb", "id": VOCAB.stoi["<unk>"], "known": False},
        {"word": "circle", "id": VOCAB.stoi["circle"], "known": True},
    ]
    assert tok.count_tokens("A red BLORB circle at the top") == 7  # 3 cut off
    no_unk = rt.WordTokenizer([w for w in VOCAB.itos if w != "<unk>"])  # e.g. AttnGAN's
    assert [s["word"] for s in no_unk.describe_tokens("a blorb red", 5)] == ["a", "red"]
    assert no_unk.count_tokens("a blorb red") == 2  # an unknown word takes no slot there


def test_standalone_runtime_run_all_with_torch_blocked(micro_export, tmp_path):
    """The deployment's own t2i_onnx_runtime.py: run_all and describe_tokens without torch or
    t2i-stages, giving what the package's runtime gives (checked against PyTorch above)."""
    deploy = tmp_path / "deploy"
    shutil.copytree(micro_export("grgan").folder, deploy)
    code = f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(deploy)!r})
        import t2i_onnx_runtime as rt
        dep = rt.load_deployment({str(deploy)!r}, "cpu")
        ids, mask = dep.tokenize({CAPTIONS!r})
        z, eps = rt.draw_noise(len(ids), dep.z_dim, dep.eps_dim, 3)
        out = dep.run_all(ids, mask, z, eps)
        np.savez({str(tmp_path / "out.npz")!r}, *out.images,
                 **{{f"attention_{{s}}": a for s, a in out.attention.items()}})
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "t2i_stages")]
        print(json.dumps({{"stages": dep.attention_stages, "has": dep.has_attention,
                          "tokens": dep.describe_tokens("a blorb circle")}}))
    """
    proc = _run_blocked(code, ("torch", "t2i_stages"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    dep = rt.load_deployment(deploy, "cpu")
    assert info["stages"] == dep.attention_stages == [1, 2] and info["has"] is True
    assert info["tokens"] == dep.describe_tokens("a blorb circle")
    assert [t["known"] for t in info["tokens"]] == [True, False, True]
    ids, mask = dep.tokenize(CAPTIONS)
    want = dep.run_all(ids, mask, *rt.draw_noise(len(ids), dep.z_dim, dep.eps_dim, 3))
    got = np.load(tmp_path / "out.npz")
    for i, im in enumerate(want.images):
        np.testing.assert_array_equal(got[f"arr_{i}"], im)
    for s, a in want.attention.items():
        np.testing.assert_array_equal(got[f"attention_{s}"], a)


def test_a_manifest_naming_a_missing_attention_output_is_refused(micro_export, tmp_path):
    deploy = tmp_path / "deploy"
    shutil.copytree(micro_export("dmgan").folder, deploy)  # graphs without attention outputs
    m = json.loads((deploy / "model.json").read_text())
    m["attention"] = [{"output": "attention_1", "stage": 1}]
    (deploy / "model.json").write_text(json.dumps(m))
    with pytest.raises(rt.DeploymentError, match="attention output.* attention_1 that the fp32"):
        rt.load_deployment(deploy, "cpu")
