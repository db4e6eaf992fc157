"""Export of trained generators and text encoders (ONNX) and the runtime that serves them.

``export_run`` / ``export_models`` (``t2i_stages.export.api``) write a deployment folder;
``load_deployment`` (``t2i_stages.export.runtime``) runs one with ONNX Runtime and no torch.
Importing this package imports nothing heavy: the names below load their modules on first use,
so the torch-free runtime stays torch-free.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "export_run": "api",
    "export_models": "api",
    "generate": "api",
    "get_exporter": "api",
    "load_deployment": "runtime",
    "Deployment": "runtime",
    "OnnxExportParams": "params",
    "OnnxExporter": "exporter",
    "ExportResult": "exporter",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
