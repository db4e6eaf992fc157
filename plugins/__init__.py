"""The built-in plugins, one folder per kind of component.

Each folder's ``__init__`` is a pluggy plugin module registered through the ``t2i_stages``
entry-point group in pyproject.toml, exactly as a third-party package registers its own.
"""
