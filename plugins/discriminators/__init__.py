"""Built-in discriminators: per-stage trunks with (un)conditional heads, and DF-GAN's."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_discriminators() -> dict[str, ComponentSpec]:
    return {}
