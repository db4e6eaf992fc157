"""Built-in losses: adversarial, matching and KL."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_losses() -> dict[str, ComponentSpec]:
    return {}
