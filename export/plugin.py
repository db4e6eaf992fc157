"""Registers the built-in exporters."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


def _build_onnx(params, registry=None, **ctx):  # noqa: ANN001 - imports torch lazily
    from .exporter import build_onnx_exporter

    return build_onnx_exporter(params, registry=registry, **ctx)


@hookimpl
def t2i_stages_exporters() -> dict[str, ComponentSpec]:
    from .params import OnnxExportParams

    return {
        "onnx": ComponentSpec(
            factory=_build_onnx,
            params=OnnxExportParams,
            summary="ONNX graphs of the EMA generator and text encoder, parity-checked against "
            "PyTorch, with a torch-free onnxruntime runtime",
        )
    }
