"""The modules that get exported, and the one call that exports them.

Each wrapper's ``forward`` signature *is* an ONNX graph's interface, with fixed names:

- text encoder: ``(token_ids int64 (B,T), token_mask bool (B,T)) -> words (B,D,T), sentence (B,D)``
- generator: ``(z (B,Z), [eps (B,E)], words, sentence, token_mask) -> image_0 .. image_{S-1}``
  and, when asked for (``export --attention``), ``attention_s`` (B, T, h, w) for each
  refinement stage s that returns a word-attention map (its weights over the token slots)
- fused: ``(token_ids, token_mask, z, [eps]) -> `` the generator's outputs, made by joining the
  two exported graphs (:func:`fuse_models`): torch.export specialises the caption length of an
  LSTM, which a standalone text encoder graph survives but a generator behind it does not.

``eps`` is an input only when the generator has a CA epsilon (``G.eps_dim > 0``). Batch and
caption length are dynamic axes. An fp16 graph casts its fp32 inputs to half inside and its
images back to fp32, so its interface is the same as the fp32 graph's (``keep_io_types``).
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2i_stages.errors import T2IError
from t2i_stages.types import TextFeatures

TEXT_INPUTS = ("token_ids", "token_mask")
TEXT_OUTPUTS = ("words", "sentence")


class ExportError(T2IError):
    """A model cannot be exported (unsupported component or exporter failure)."""


def _check_text_encoder(encoder: Any) -> None:
    if not hasattr(encoder, "encode_text"):
        raise ExportError(f"{type(encoder).__name__} has no encode_text(tokens, mask)")
    side = getattr(encoder, "text", None)
    if getattr(side, "mode", None) == "retokenize":
        raise ExportError(
            "this text encoder re-tokenizes captions with a Hugging Face tokenizer inside its "
            "forward pass, which cannot be exported; use word-level ids (a scratch CLIP) instead"
        )


class TextEncoderGraph(nn.Module):
    """``(token_ids, token_mask) -> (words, sentence)`` around any ``encode_text``."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        _check_text_encoder(encoder)
        self.encoder = encoder

    def forward(
        self, token_ids: torch.Tensor, token_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder.encode_text(token_ids, token_mask)
        return out.words, out.sentence


def attention_name(stage: int) -> str:
    """The graph output that carries refinement stage ``stage``'s word-attention map."""
    return f"attention_{stage}"


def _images(
    graph: GeneratorGraph,
    z: torch.Tensor,
    eps: torch.Tensor | None,
    words: torch.Tensor,
    sentence: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    dtype = graph.dtype
    if dtype != torch.float32:
        z, words, sentence = z.to(dtype), words.to(dtype), sentence.to(dtype)
        eps = eps.to(dtype) if eps is not None else None
    text = TextFeatures(words, sentence, mask, mask.sum(1))
    out = graph.generator(z, eps, text)
    images = tuple(im.float() for im in out.images)
    # out.attention[s - 1] is stage s's map (stage 0, the initial stage, has none)
    return images + tuple(out.attention[s - 1].float() for s in graph.attention_stages)


class GeneratorGraph(nn.Module):
    """``(z, eps, words, sentence, token_mask) -> every stage's image`` (a CA generator), then
    the attention maps of ``attention_stages``."""

    def __init__(
        self,
        generator: nn.Module,
        dtype: torch.dtype = torch.float32,
        attention_stages: Sequence[int] = (),
    ):
        super().__init__()
        self.generator = generator
        self.dtype = dtype
        self.attention_stages = tuple(int(s) for s in attention_stages)

    def forward(
        self,
        z: torch.Tensor,
        eps: torch.Tensor,
        words: torch.Tensor,
        sentence: torch.Tensor,
        token_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        return _images(self, z, eps, words, sentence, token_mask)


class GeneratorGraphNoEps(GeneratorGraph):
    """``(z, words, sentence, token_mask) -> every stage's image`` (no CA epsilon)."""

    def forward(  # type: ignore[override]
        self, z: torch.Tensor, words: torch.Tensor, sentence: torch.Tensor, token_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return _images(self, z, None, words, sentence, token_mask)


def generator_graph(
    generator: nn.Module,
    dtype: torch.dtype = torch.float32,
    attention_stages: Sequence[int] = (),
) -> nn.Module:
    """The generator wrapper whose inputs and outputs match ``graph_spec("generator", ...)``."""
    cls = GeneratorGraph if getattr(generator, "eps_dim", 0) else GeneratorGraphNoEps
    return cls(generator, dtype, attention_stages).eval()


@dataclass
class GraphSpec:
    """A graph's interface: ordered input names, their dynamic axes, output names, and output
    axes of known size (a tracer may leave them symbolic)."""

    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]]
    fixed: dict[str, dict[int, int]] = field(default_factory=dict)


def generator_inputs(has_eps: bool) -> list[str]:
    return ["z", *(["eps"] if has_eps else []), "words", "sentence", "token_mask"]


def fused_inputs(has_eps: bool) -> list[str]:
    return ["token_ids", "token_mask", "z", *(["eps"] if has_eps else [])]


_AXES: dict[str, dict[int, str]] = {
    "token_ids": {0: "batch", 1: "T"},
    "token_mask": {0: "batch", 1: "T"},
    "z": {0: "batch"},
    "eps": {0: "batch"},
    "words": {0: "batch", 2: "T"},
    "sentence": {0: "batch"},
}


def graph_spec(
    role: str,
    has_eps: bool,
    n_stages: int,
    attention_stages: Sequence[int] = (),
    attention_sizes: dict[int, tuple[int, int]] | None = None,
) -> GraphSpec:
    """Names and dynamic axes of the ``text_encoder``, ``generator`` or ``fused`` graph; the
    images come first, then ``attention_s`` for each of ``attention_stages`` (none by default),
    whose (h, w) ``attention_sizes`` gives by stage."""
    images = [f"image_{i}" for i in range(n_stages)]
    images += [attention_name(s) for s in attention_stages]
    if role == "text_encoder":
        inputs, outputs = list(TEXT_INPUTS), list(TEXT_OUTPUTS)
    elif role == "generator":
        inputs, outputs = generator_inputs(has_eps), images
    elif role == "fused":
        inputs, outputs = fused_inputs(has_eps), images
    else:
        raise ValueError(f"unknown graph role {role!r}")
    dynamic = {name: dict(_AXES[name]) for name in inputs}
    for name in outputs:
        if name == "words":
            dynamic[name] = {0: "batch", 2: "T"}
        elif name.startswith("attention_"):
            dynamic[name] = {0: "batch", 1: "T"}
        else:
            dynamic[name] = {0: "batch"}
    fixed = {
        attention_name(s): {2: h, 3: w}
        for s, (h, w) in (attention_sizes or {}).items()
        if attention_name(s) in outputs
    }
    return GraphSpec(inputs, outputs, dynamic, fixed)


def _restore_inputs(model: Any, spec: GraphSpec, example: Sequence[torch.Tensor]) -> None:
    """Put back inputs the tracer dropped because the model ignores them (e.g. a generator
    that reads only the sentence), so every graph of a role has the same interface."""
    from onnx import helper

    have = {i.name: i for i in model.graph.input}
    if list(have) == spec.inputs:
        return
    dtypes = {
        torch.float32: onnx_type("FLOAT"),
        torch.float16: onnx_type("FLOAT16"),
        torch.int64: onnx_type("INT64"),
        torch.bool: onnx_type("BOOL"),
    }
    ordered = []
    for name, tensor in zip(spec.inputs, example, strict=True):
        if name in have:
            ordered.append(have.pop(name))
            continue
        dims: list[Any] = list(tensor.shape)
        for axis, label in spec.dynamic.get(name, {}).items():
            dims[axis] = label
        ordered.append(helper.make_tensor_value_info(name, dtypes[tensor.dtype], dims))
    ordered += list(have.values())  # anything unexpected stays (and fails the name check)
    del model.graph.input[:]
    model.graph.input.extend(ordered)


def check_dynamic_inputs(model: Any, spec: GraphSpec, name: str) -> None:
    """Every axis the spec calls dynamic must be symbolic in the graph's inputs.

    An exporter that specialises an axis writes a graph that runs only at the example's size;
    say so now, by name, instead of an ONNX Runtime shape error at the first other caption
    length."""
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        for axis, label in spec.dynamic.get(graph_input.name, {}).items():
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                raise ExportError(
                    f"{name}: input '{graph_input.name}' axis {axis} ('{label}') came out fixed "
                    f"at {dims[axis].dim_value}; the graph would accept only that size (try "
                    "exporter: torchscript, and please report the model)"
                )


def onnx_type(name: str) -> int:
    import onnx

    return int(getattr(onnx.TensorProto, name))


def _name_output_axes(model: Any, spec: GraphSpec) -> None:
    """Write the symbolic batch/T names on the outputs and drop the intermediate shape hints.

    torch.export specialises an LSTM's sequence length to the example's, so the exported
    ``value_info`` (optional hints) would claim a fixed T; ONNX Runtime re-infers without them.
    """
    del model.graph.value_info[:]
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        for axis, name in spec.dynamic.get(out.name, {}).items():
            if axis < len(dims):
                dims[axis].ClearField("dim_value")
                dims[axis].dim_param = name
        for axis, size in spec.fixed.get(out.name, {}).items():
            if axis < len(dims):
                dims[axis].ClearField("dim_param")
                dims[axis].dim_value = size


def export_module(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    spec: GraphSpec,
    path: str | Path,
    opset: int | None = None,
    exporter: str = "dynamo",
    optimize: bool = True,
) -> Path:
    """Export ``module`` to one self-contained ``.onnx`` file (weights inside, < 2 GB).

    ``exporter="dynamo"`` is torch.export (opset >= 18); ``"torchscript"`` is the legacy
    tracer (opset <= 17), much faster to run and kept for old consumers. ``optimize`` applies
    the rewrites of :mod:`.optimize`.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = tuple(example)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                dims: dict[str, torch.export.Dim] = {}
                shapes = {}
                for name in spec.inputs:
                    shapes[name] = {
                        axis: dims.setdefault(label, torch.export.Dim(label))
                        for axis, label in spec.dynamic[name].items()
                    }
                prog = torch.onnx.export(
                    module,
                    args,
                    input_names=spec.inputs,
                    output_names=spec.outputs,
                    dynamic_shapes=tuple(shapes[n] for n in spec.inputs),
                    opset_version=opset,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
                model = prog.model_proto
            elif exporter == "torchscript":
                buf = io.BytesIO()
                torch.onnx.export(
                    module,
                    args,
                    buf,
                    input_names=spec.inputs,
                    output_names=spec.outputs,
                    dynamic_axes=spec.dynamic,
                    opset_version=opset or 17,
                    dynamo=False,
                )
                model = onnx.load_from_string(buf.getvalue())
            else:
                raise ExportError(f"unknown exporter '{exporter}' (dynamo or torchscript)")
    except T2IError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(
            f"exporting {type(module).__name__} to {path.name} failed: {type(exc).__name__}: "
            f"{first[:300]}"
        ) from exc
    _restore_inputs(model, spec, args)
    got = [i.name for i in model.graph.input]
    if got != spec.inputs:
        raise ExportError(f"{path.name}: graph inputs {got}, expected {spec.inputs}")
    check_dynamic_inputs(model, spec, path.name)
    _name_output_axes(model, spec)
    if optimize:
        from .optimize import upsample_conv_to_conv_transpose

        upsample_conv_to_conv_transpose(model)
    onnx.save_model(model, str(path))
    return path


def half_copy(module: nn.Module) -> nn.Module:
    """An fp16 copy of ``module`` (the original is untouched)."""
    return copy.deepcopy(module).half()


def opset_of(path: str | Path) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def fuse_models(encoder: Any, generator: Any) -> Any:
    """One ONNX model: the text encoder's words/sentence feed the generator, the mask is shared.

    Both models must come from the same exporter and opset. Internal names are prefixed
    (``text_encoder/``, ``generator/``); the interface keeps the deployment names.
    """
    from onnx import compose

    enc = compose.add_prefix(encoder, "text_encoder/", rename_inputs=False, rename_outputs=False)
    gen = compose.add_prefix(generator, "generator/", rename_inputs=False, rename_outputs=False)
    shared = "generator/token_mask"
    for node in gen.graph.node:
        node.input[:] = [shared if i == "token_mask" else i for i in node.input]
    for inp in gen.graph.input:
        if inp.name == "token_mask":
            inp.name = shared
    fused = compose.merge_models(
        enc,
        gen,
        io_map=[("words", "words"), ("sentence", "sentence")],
        outputs=[o.name for o in generator.graph.output],
    )
    for node in fused.graph.node:
        node.input[:] = ["token_mask" if i == shared else i for i in node.input]
    keep = [i for i in fused.graph.input if i.name != shared]
    del fused.graph.input[:]
    fused.graph.input.extend(keep)
    fused.producer_name = "t2i-stages"
    return fused
