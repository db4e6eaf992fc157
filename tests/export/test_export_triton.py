"""`export --triton` (issue 20, point 7): the model repository layout, config.pbtxt parsed back
into Triton's own ModelConfig protobuf and checked against model.json and the ONNX graph, the
joined graph's parity, and the client example's request (no Triton server is run here)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys

import numpy as np
import onnx
import pytest
from export_helpers import REPO
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2  # the `triton` extra, in `dev`

from t2i_stages.errors import T2IError
from t2i_stages.export import runtime as rt
from t2i_stages.export.api import get_exporter

ONNX_TO_TRITON = {
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.FLOAT: "TYPE_FP32",
}
STYLES = ["attngan", "grgan"]  # fused export (graph copied); split export (graphs joined)


def _config(folder, manifest):
    path = folder / "triton" / manifest["triton"]["model"] / "config.pbtxt"
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _dims(entry) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in entry["shape"][1:]]


@pytest.mark.parametrize("style", STYLES)
def test_config_pbtxt_is_a_model_config_that_matches_model_json(micro_export, style):
    d = micro_export(style)
    m = d.result.manifest
    name = m["triton"]["model"]
    assert name == f"micro-{style}"  # the recipe's name by default
    cfg = _config(d.folder, m)
    assert cfg.name == name and cfg.backend == "onnxruntime"
    assert cfg.max_batch_size == m["triton"]["max_batch_size"] == 8
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    graph = onnx.load(str(d.folder / "triton" / name / "1" / "model.onnx"))
    onnx_types = {
        v.name: ONNX_TO_TRITON[v.type.tensor_type.elem_type]
        for v in [*graph.graph.input, *graph.graph.output]
    }
    for blocks, entries in ((cfg.input, m["inputs"]), (cfg.output, m["outputs"])):
        assert [b.name for b in blocks] == [e["name"] for e in entries]
        for block, entry in zip(blocks, entries, strict=True):
            assert list(block.dims) == _dims(entry)  # no batch axis: max_batch_size > 0
            kind = model_config_pb2.DataType.Name(block.data_type)
            assert kind == onnx_types[block.name]
            assert kind == {"int64": "TYPE_INT64", "bool": "TYPE_BOOL"}.get(
                entry["dtype"], "TYPE_FP32"
            )
    by_name = {b.name: b for b in cfg.output}
    for a in m["attention"]:  # the attention outputs are served too: (T, h, w)
        assert list(by_name[a["output"]].dims) == [-1, a["resolution"], a["resolution"]]
    assert list({b.name: b for b in cfg.input}["token_ids"].dims) == [-1]  # T
    for rel, digest in m["triton"]["files"].items():
        assert hashlib.sha256((d.folder / rel).read_bytes()).hexdigest() == digest
    assert "no Triton server was run" in m["triton"]["note"]


def test_a_split_export_serves_the_joined_graph_parity_checked(micro_export):
    d = micro_export("grgan")
    m = d.result.manifest
    assert m["layout"] == "separate" and "joined" in m["triton"]["graph"]
    rep = m["parity"]["triton_fp32"]
    assert rep["passed"] and rep["precision"] == "triton/fp32"
    names = [o["name"] for o in rep["cases"][0]["outputs"]]
    assert names == [o["name"] for o in m["outputs"]]  # images and attention, no features
    # the fused export's repository holds its own model.onnx, byte for byte
    f = micro_export("attngan")
    tri = f.folder / "triton" / f.result.manifest["triton"]["model"] / "1" / "model.onnx"
    assert tri.read_bytes() == (f.folder / "model.onnx").read_bytes()
    assert "triton_fp32" not in f.result.manifest["parity"]  # the same graph, checked once


def _client():
    path = REPO / "examples" / "triton_client.py"
    spec = importlib.util.spec_from_file_location("triton_client_example", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("style", STYLES)
def test_the_client_example_builds_the_request_config_pbtxt_asks_for(micro_export, style):
    d = micro_export(style)
    client = _client()
    manifest, tokenizer, runtime = client.read_deployment(d.folder)
    captions = ["a red circle", "", "zzz blue"]
    arrays = client.request_arrays(manifest, tokenizer, runtime, captions, seed=4)
    inputs = client.infer_inputs(manifest, arrays)
    cfg = _config(d.folder, manifest)
    wire = {"TYPE_INT64": "INT64", "TYPE_BOOL": "BOOL", "TYPE_FP32": "FP32"}
    assert [i.name() for i in inputs] == [b.name for b in cfg.input]
    for inp, block in zip(inputs, cfg.input, strict=True):
        assert inp.datatype() == wire[model_config_pb2.DataType.Name(block.data_type)]
        shape = inp.shape()
        assert shape[0] == len(captions) <= cfg.max_batch_size
        assert all(want in (-1, got) for got, want in zip(shape[1:], block.dims, strict=True))
    dep = rt.load_deployment(d.folder, "cpu")
    ids, mask = dep.tokenize(captions)  # the client tokenizes and draws noise as the runtime
    z, eps = rt.draw_noise(len(captions), dep.z_dim, dep.eps_dim, 4)
    for key, want in {"token_ids": ids, "token_mask": mask, "z": z, "eps": eps}.items():
        np.testing.assert_array_equal(arrays[key], want)
        sent = next(i for i in inputs if i.name() == key)._get_binary_data()
        assert sent == np.ascontiguousarray(want).tobytes()
    outs = client.requested_outputs(manifest, attention=True)
    assert [o.name() for o in outs] == [b.name for b in cfg.output]
    plain = [o.name() for o in client.requested_outputs(manifest)]
    assert plain == [f"image_{i}" for i in range(len(d.generator.resolutions))]


def test_triton_params_are_checked(registry, micro_export):
    with pytest.raises(T2IError, match="triton_precision fp16 needs the fp16 graphs"):
        get_exporter("onnx", {"triton": True, "triton_precision": "fp16"}, registry)
    with pytest.raises(T2IError, match="triton_model_name"):
        get_exporter("onnx", {"triton": True, "triton_model_name": "a/b"}, registry)
    client = _client()
    with pytest.raises(SystemExit, match="exported without --triton"):
        client.read_deployment(micro_export("dmgan").folder)
