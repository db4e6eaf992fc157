"""A Triton Inference Server model repository beside a deployment (``export --triton``).

Layout (Triton's convention: a folder per model, numbered version folders)::

    <deployment>/triton/<model_name>/config.pbtxt
    <deployment>/triton/<model_name>/1/model.onnx

The model is always one fused graph, ``(token_ids, token_mask, z, [eps]) -> image_* [,
attention_*]``: a fused export's ``model.onnx`` as it is, or, for a split export, the text
encoder and generator joined by :func:`.graphs.fuse_models` (the join ``--fused`` makes) and
parity-checked again. One model means one dynamic batcher and no intermediate tensors between
models; an ensemble of the two graphs would need three configs, batch each half separately and
hand the words tensor from one model to the other. The tokenizer and the noise stay on the
client (``examples/triton_client.py``).

``config.pbtxt`` is written as text here (no tritonclient needed to export); the test parses it
back into Triton's ``ModelConfig`` protobuf. Dims come from ``model.json`` without the batch axis
(``max_batch_size > 0``), symbolic axes as -1; the data types are read from the ONNX graph and
must agree with ``model.json``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .graphs import ExportError, fuse_models

FOLDER = "triton"
VERSION = "1"

# model.json dtype -> (ONNX TensorProto name, Triton DataType)
_TYPES = {
    "int64": ("INT64", "TYPE_INT64"),
    "bool": ("BOOL", "TYPE_BOOL"),
    "float32": ("FLOAT", "TYPE_FP32"),
    "float16": ("FLOAT16", "TYPE_FP16"),
}


def model_name(source: dict[str, Any], given: str | None = None) -> str:
    """The Triton model name: ``given``, else the recipe's name made folder-safe."""
    if given:
        return given
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(source.get("recipe_name") or "")).strip("_")
    return name or "t2i_stages"


def place_graph(folder: Path, entries: dict[str, dict[str, Any]], name: str) -> Path:
    """Write ``triton/<name>/1/model.onnx`` from a precision's graphs; returns its path."""
    import onnx

    dest = folder / FOLDER / name / VERSION / "model.onnx"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if "fused" in entries:
        shutil.copyfile(folder / entries["fused"]["file"], dest)
    else:
        enc = onnx.load(str(folder / entries["text_encoder"]["file"]))
        gen = onnx.load(str(folder / entries["generator"]["file"]))
        onnx.save_model(fuse_models(enc, gen), str(dest))
    return dest


def _onnx_io(path: Path) -> dict[str, tuple[str, list[int | str | None]]]:
    """name -> (TensorProto type name, dims) of every graph input and output."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    out = {}
    for vi in [*model.graph.input, *model.graph.output]:
        tt = vi.type.tensor_type
        dims: list[int | str | None] = []
        for d in tt.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        out[vi.name] = (onnx.TensorProto.DataType.Name(tt.elem_type), dims)
    return out


def _tensor(entry: dict[str, Any], graph: dict[str, tuple[str, list]], where: str) -> str:
    """One ``input``/``output`` block, checked against the ONNX graph."""
    name = entry["name"]
    if name not in graph:
        raise ExportError(f"triton: model.json's {where} '{name}' is not in the ONNX graph")
    onnx_type, onnx_dims = graph[name]
    want_onnx, triton_type = _TYPES[entry["dtype"]]
    if onnx_type != want_onnx:
        raise ExportError(
            f"triton: '{name}' is {onnx_type} in the ONNX graph but {entry['dtype']} in model.json"
        )
    shape = list(entry["shape"])
    if onnx_dims and len(onnx_dims) != len(shape):
        raise ExportError(f"triton: '{name}' has rank {len(onnx_dims)} in ONNX, {len(shape)} here")
    dims = []
    for axis, d in enumerate(shape[1:], start=1):  # the batch axis is Triton's (max_batch_size)
        fixed = onnx_dims[axis] if onnx_dims else None
        if isinstance(d, int):
            if isinstance(fixed, int) and fixed != d:
                raise ExportError(f"triton: '{name}' axis {axis} is {fixed} in ONNX, {d} here")
            dims.append(d)
        else:
            if isinstance(fixed, int):
                raise ExportError(f"triton: '{name}' axis {axis} is fixed at {fixed} in ONNX")
            dims.append(-1)
    return (
        f'  {{\n    name: "{name}"\n    data_type: {triton_type}\n'
        f"    dims: [ {', '.join(str(d) for d in dims)} ]\n  }}"
    )


def config_text(
    name: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    graph_path: Path,
    max_batch_size: int,
    max_queue_delay_us: int,
) -> str:
    """``config.pbtxt`` for the onnxruntime backend with dynamic batching."""
    graph = _onnx_io(graph_path)
    blocks_in = ",\n".join(_tensor(e, graph, "input") for e in inputs)
    blocks_out = ",\n".join(_tensor(e, graph, "output") for e in outputs)
    return (
        f'name: "{name}"\n'
        'backend: "onnxruntime"\n'
        f"max_batch_size: {int(max_batch_size)}\n"
        f"input [\n{blocks_in}\n]\n"
        f"output [\n{blocks_out}\n]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {int(max_queue_delay_us)}\n"
        "}\n"
    )


def write_config(folder: Path, name: str, manifest: dict[str, Any], params: Any) -> dict[str, Any]:
    """Write ``triton/<name>/config.pbtxt`` for the graph :func:`place_graph` wrote; returns
    ``model.json``'s ``triton`` entry (``params``: the exporter's OnnxExportParams)."""
    from t2i_stages.hashing import sha256_file

    graph_path = folder / FOLDER / name / VERSION / "model.onnx"
    text = config_text(
        name,
        manifest["inputs"],
        manifest["outputs"],
        graph_path,
        params.triton_max_batch_size,
        params.triton_max_queue_delay_us,
    )
    path = folder / FOLDER / name / "config.pbtxt"
    path.write_text(text, encoding="utf-8")
    joined = "copied from the fused export" if params.fused else "text encoder + generator joined"
    return {
        "repository": FOLDER,
        "model": name,
        "precision": params.triton_precision,
        "graph": f"fused ({joined})",
        "max_batch_size": params.triton_max_batch_size,
        "max_queue_delay_microseconds": params.triton_max_queue_delay_us,
        "files": {str(f.relative_to(folder)): sha256_file(f) for f in (path, graph_path)},
        "note": "written for Triton's onnxruntime backend; no Triton server was run here",
    }
