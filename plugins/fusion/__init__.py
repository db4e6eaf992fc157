"""Built-in fusion blocks: word attention, dynamic memory, DF-GAN affine fusion."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_fusion() -> dict[str, ComponentSpec]:
    return {}
