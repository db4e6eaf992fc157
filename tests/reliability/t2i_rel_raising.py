"""A test-only plugin whose registration hook raises."""

from t2i_stages import hookimpl


@hookimpl
def t2i_stages_metrics():
    raise RuntimeError("registration exploded")
