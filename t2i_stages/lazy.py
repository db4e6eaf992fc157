"""Module attributes imported on first use (PEP 562), for packages whose names should not
pull torch in just by importing the package."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, names: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``names`` comes from the
    module it maps to (absolute, or relative to ``package``), imported when first asked for and
    then kept in ``namespace`` (the package's ``globals()``)::

        __getattr__, __dir__ = lazy_exports(__name__, {"ShapesDataset": ".dataset"}, globals())
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
