"""Built-in generators: the stage-wise assembler and DF-GAN's single-stage generator."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_generators() -> dict[str, ComponentSpec]:
    return {}
