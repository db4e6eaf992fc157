"""Registers the built-in exporters."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_exporters() -> dict[str, ComponentSpec]:
    return {}
