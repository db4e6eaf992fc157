"""A plugin that claims a name the toy plugin already provides."""

from t2i_stages import ComponentSpec, hookimpl


@hookimpl
def t2i_stages_fusion():
    return {"toy_fusion": ComponentSpec(lambda params, **ctx: None, summary="clash")}
