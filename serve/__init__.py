"""Serving a deployment folder over HTTP: ONNX Runtime, micro-batching, no torch.

``create_app`` (``t2i_stages.serve.app``) builds the Starlette app, ``serve``
(``t2i_stages.serve.server``) runs it under uvicorn; ``t2i-stages serve EXPORT_DIR`` is the
command. Nothing in this package imports torch (a test blocks it), and importing the package
imports nothing heavy: the names below load their modules on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "create_app": "app",
    "serve": "server",
    "ServeConfig": "config",
    "make_config": "config",
    "ServedModel": "model",
    "MicroBatcher": "batcher",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
