"""Built-in datasets: the procedural captioned-shapes set and loaders for COCO, CUB and plain folders."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_datasets() -> dict[str, ComponentSpec]:
    return {}
