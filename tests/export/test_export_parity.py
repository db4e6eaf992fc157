"""The parity check itself: element rule, a graph that disagrees with PyTorch fails the export
with the measured difference, generators without a CA epsilon, the exporter plugin."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from export_helpers import ToyEncoder, ToyGenerator

from t2i_stages.export.api import export_models, get_exporter
from t2i_stages.export.graphs import GraphSpec, export_module
from t2i_stages.export.parity import ParityError, compare, make_inputs
from t2i_stages.export.runtime import load_deployment
from t2i_stages.text import WordVocab

VOCAB = WordVocab.build(["a red circle", "a blue square on the left"])


def test_compare_uses_the_allclose_rule():
    ref = np.array([1.0, -2.0, 0.0])
    edge = ref + np.array([1e-5 + 1e-3, 0.0, 1e-5])  # exactly at atol + rtol*|ref|
    assert compare("x", edge, ref, rtol=1e-3, atol=1e-5).passed
    over = ref + np.array([0.0, 0.0, 2e-5])
    d = compare("x", over, ref, rtol=1e-3, atol=1e-5)
    assert not d.passed and d.max_abs_diff == pytest.approx(2e-5)
    assert not compare("x", np.array([np.nan, 0, 0]), ref, 1e-3, 1e-5).passed
    assert not compare("x", np.zeros(2), ref, 1e-3, 1e-5).passed  # shape mismatch


def test_parity_inputs_include_a_fully_padded_caption():
    feeds, lengths = make_inputs(4, 6, vocab_size=10, z_dim=3, eps_dim=2, seed=0)
    assert lengths[:2] == [6, 0] and all(1 <= n <= 6 for n in lengths[2:])
    assert feeds["token_mask"].sum(1).tolist() == lengths
    assert (feeds["token_ids"][~feeds["token_mask"]] == 0).all()
    assert feeds["eps"].shape == (4, 2) and feeds["z"].dtype == np.float32


def test_a_graph_that_disagrees_with_pytorch_fails_the_export(tmp_path):
    gen = ToyGenerator(quirk=True)  # the tracer bakes batch 2's branch into the graph
    out = tmp_path / "deploy"
    with pytest.raises(ParityError) as exc:
        export_models(gen, ToyEncoder(len(VOCAB)), VOCAB, out, 6, exporter="torchscript")
    msg = str(exc.value)
    assert msg.startswith("fp32 parity failed: image_")
    assert "max |diff|" in msg and "atol 1e-05" in msg and "\n" not in msg
    assert not out.exists()
    failed = tmp_path / "deploy.failed"
    assert str(failed) in msg
    rep = json.loads((failed / "model.json").read_text())["parity"]["fp32"]
    assert rep["passed"] is False
    bad = [c for c in rep["cases"] if not c["passed"]]
    assert {c["batch"] for c in bad} == {1, 3}  # batch 2 was the traced example
    assert all(o["max_abs_diff"] > 0.01 for c in bad for o in c["outputs"] if not o["passed"])


def test_generator_without_ca_epsilon_and_torchscript_exporter(tmp_path):
    gen = ToyGenerator(eps_dim=0).train()
    res = export_models(
        gen, ToyEncoder(len(VOCAB)), VOCAB, tmp_path / "d", 6, exporter="torchscript"
    )
    m = res.manifest
    assert m["eps_dim"] == 0 and [i["name"] for i in m["inputs"]] == [
        "token_ids",
        "token_mask",
        "z",
    ]
    assert m["graphs"]["fp32"]["generator"]["inputs"] == ["z", "words", "sentence", "token_mask"]
    assert m["opset"] == 17 and m["parity"]["fp32"]["passed"]
    dep = load_deployment(res.folder, "cpu")
    images = dep.generate(["a red circle", ""], seed=0)
    assert [im.shape for im in images] == [(2, 3, 4, 4), (2, 3, 8, 8)]
    assert gen.training  # exported in eval mode, then left as it was given
    # re-exporting over a deployment folder replaces it
    again = export_models(
        gen, ToyEncoder(len(VOCAB)), VOCAB, res.folder, 6, exporter="torchscript", parity=False
    )
    assert again.manifest["parity"]["checked"] is False


def test_exporter_plugin_is_registered_and_validates_params(registry):
    assert "onnx" in registry.names("exporter")
    entry = registry.get("exporter", "onnx")
    schema = entry.spec.params.model_json_schema()
    assert entry.spec.params.__doc__
    assert all(f.get("description") for f in schema["properties"].values())
    exp = get_exporter("onnx", {"fp16": True, "fused": True}, registry)
    assert exp.params.fp16 and exp.params.fused and exp.params.parity
    from t2i_stages.errors import T2IError

    with pytest.raises(T2IError, match="opset 18 or newer"):
        get_exporter("onnx", {"opset": 17}, registry)
    with pytest.raises(T2IError, match="parity_batches"):
        get_exporter("onnx", {"parity_batches": [0]}, registry)
    with pytest.raises(T2IError, match="unknown exporter 'tflite'"):
        get_exporter("tflite", {}, registry)


class _UpConv(torch.nn.Module):
    def __init__(self, mode: str = "nearest", padding: int = 1):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, padding=padding)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode=self.mode))


@pytest.mark.parametrize(
    ("mode", "padding", "rewritten"),
    [("nearest", 1, True), ("bilinear", 1, False), ("nearest", 0, False)],
)
def test_upsample_conv_rewrite_is_exact_and_only_for_its_pattern(
    tmp_path, mode, padding, rewritten
):
    module = _UpConv(mode, padding).eval()
    x = torch.randn(2, 3, 6, 6)
    axes = {0: "batch", 2: "h", 3: "w"}
    spec = GraphSpec(["x"], ["y"], {"x": axes, "y": {0: "batch"}})
    path = export_module(module, [x], spec, tmp_path / "m.onnx", exporter="torchscript")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ("ConvTranspose" in ops) is rewritten and ("Resize" in ops) is not rewritten
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, 7, 5)  # another batch and odd sizes
    with torch.no_grad():
        want = module(x3).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x3.numpy()})[0], want, rtol=1e-4, atol=1e-5)


def test_an_input_axis_the_exporter_fixed_is_a_named_error():
    # as when torch.export falls back to a static capture: the graph would take one length only
    from onnx import TensorProto, helper

    from t2i_stages.errors import T2IError
    from t2i_stages.export.graphs import check_dynamic_inputs, graph_spec

    spec = graph_spec("text_encoder", has_eps=True, n_stages=2)
    ids = helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", 7])
    mask = helper.make_tensor_value_info("token_mask", TensorProto.BOOL, ["batch", "T"])
    graph = helper.make_graph([], "g", [ids, mask], [])
    with pytest.raises(T2IError) as info:
        check_dynamic_inputs(helper.make_model(graph), spec, "text_encoder.onnx")
    assert str(info.value).startswith(
        "text_encoder.onnx: input 'token_ids' axis 1 ('T') came out fixed at 7; "
    )
    ids_ok = helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "T"])
    ok = helper.make_graph([], "g", [ids_ok, mask], [])
    check_dynamic_inputs(helper.make_model(ok), spec, "text_encoder.onnx")  # no error


def test_a_generator_that_reads_token_ids_is_refused_before_tracing(tmp_path):
    from t2i_stages.errors import T2IError

    gen = ToyGenerator()
    level = torch.nn.Module()
    level.reads_token_ids = True  # as the token_words conditioning level
    gen.add_module("own_words", level)
    out = tmp_path / "deploy"
    with pytest.raises(T2IError, match="'own_words' .* reads the token ids"):
        export_models(gen, ToyEncoder(len(VOCAB)), VOCAB, out, 6, exporter="torchscript")
    assert not out.exists()
