"""Built-in image-text matchers: DAMSM and the CLIP-based ITM."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_matchers() -> dict[str, ComponentSpec]:
    return {}
