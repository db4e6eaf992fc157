"""Built-in metrics: FID/KID, IS, R-precision, CMD/ITDis, CLIP score, attribute accuracy."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_metrics() -> dict[str, ComponentSpec]:
    return {}
