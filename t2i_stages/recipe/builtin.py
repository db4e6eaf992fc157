"""The built-in recipes as installed package data: ``builtin:NAME`` names one.

``recipes/`` installs as ``t2i_stages.recipes`` (in a wheel and in an editable install alike),
so a recipe in any package can ``extends: builtin:dmgan.yaml`` and a command can take
``builtin:coco/grgan.yaml`` without knowing where t2i-stages is installed.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path, PurePosixPath

from ..errors import RecipeError

PREFIX = "builtin:"
PACKAGE = "t2i_stages.recipes"
NOT_RECIPES = ("ablations",)  # folders of recipes/ that hold ablation files, not recipes


def is_builtin(name: str | Path) -> bool:
    return str(name).startswith(PREFIX)


def builtin_root() -> Path:
    """The installed folder of the built-in recipes."""
    return Path(str(resources.files(PACKAGE)))


def builtin_names() -> list[str]:
    """Every built-in recipe, as ``builtin:`` takes it (``dmgan.yaml``, ``coco/grgan.yaml``)."""
    root = builtin_root()
    names = [p.relative_to(root).as_posix() for p in root.rglob("*.yaml")]
    return sorted(n for n in names if n.split("/")[0] not in NOT_RECIPES)


def builtin_recipe(name: str | Path, where: str) -> Path:
    """The file ``builtin:NAME`` names; a RecipeError starting with ``where`` otherwise."""
    rel = str(name)[len(PREFIX) :] if is_builtin(name) else str(name)
    known = builtin_names()
    pure = PurePosixPath(rel)
    if rel in known and not pure.is_absolute() and ".." not in pure.parts:
        return builtin_root() / pure
    close = difflib.get_close_matches(rel, known, n=1, cutoff=0.5)
    hint = f"did you mean '{PREFIX}{close[0]}'? " if close else ""
    raise RecipeError(
        [f"{where}: no built-in recipe '{rel}'; {hint}built-in recipes: {', '.join(known)}"]
    )
