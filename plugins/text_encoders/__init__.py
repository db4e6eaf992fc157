"""Built-in text encoders: the DAMSM bi-LSTM, CLIP's text tower and generic Hugging Face encoders."""

from __future__ import annotations

from t2i_stages.hookspecs import hookimpl
from t2i_stages.spec import ComponentSpec


@hookimpl
def t2i_stages_text_encoders() -> dict[str, ComponentSpec]:
    return {}
