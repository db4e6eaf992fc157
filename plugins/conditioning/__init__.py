"""Built-in conditioning levels: CA, tiled sentence, words, mean of words, none."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_conditioning() -> dict[str, ComponentSpec]:
    return {}
