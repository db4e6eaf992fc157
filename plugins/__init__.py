"""The built-in plugins, one folder per kind of component.

Each folder's ``__init__`` is a pluggy plugin module registered through the ``t2i_stages``
entry-point group in pyproject.toml, exactly as a third-party package registers its own.

Registering them imports no torch, so `plugins`, `schema` and `validate` stay torch-free: each
folder keeps its params models in ``params.py`` (pydantic and ``t2i_stages.plugin`` only; the
modules that build the components import them from there), names its factories by
``"module:attribute"`` strings that the registry imports at the first build, and states the
facts validation needs without building (a loss's ``role``, a generator's ``resolutions``, a
stage's ``out_resolution``).
"""
