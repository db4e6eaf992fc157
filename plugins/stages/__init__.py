"""Built-in generator stages: initial, refinement and to-image head."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_stages() -> dict[str, ComponentSpec]:
    return {}
