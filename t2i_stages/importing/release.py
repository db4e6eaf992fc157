"""What an importer plugin is, and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .legacy import ReleaseFile


@dataclass
class ImportedRelease:
    """A release mapped onto the framework: a recipe and the checkpoint components.

    ``recipe`` is recipe data (it may ``extends: builtin:NAME``); ``components`` maps checkpoint
    component names (``generator``, ``matcher``, ``text_encoder``, ``discriminator_0``, ...) to
    state dicts in the framework's key names, each with ``sources[name]``, the file it came
    from; ``vocab`` is the word vocabulary (a ``WordVocab``) the text side was trained with, or
    None for a text side with its own tokenizer (CLIP's): the run then takes its dataset's.

    ``assets`` are files the recipe's components read at build time (a converted CLIP folder):
    folder name inside the run -> a writer given that folder; the recipe names the run folder
    as ``{run}`` (``"{run}/clip-itm"``), filled in with its absolute path. ``overrides`` are
    ``--set`` lines applied before the user's (a list item of the base recipe, which a list in
    ``recipe`` would replace as a whole).
    """

    recipe: dict[str, Any]
    components: dict[str, dict[str, Any]]
    sources: dict[str, str]
    release: str
    vocab: Any = None
    dropped: dict[str, list[str]] = field(default_factory=dict)  # component -> reference keys
    notes: list[str] = field(default_factory=list)
    assets: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


@runtime_checkable
class Importer(Protocol):
    """An importer plugin's component (kind ``importer``): one paper's release format."""

    def identify(self, files: list[ReleaseFile]) -> str | None:
        """The release these files look like (from their keys and shapes), or None."""

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        """Map the files onto the framework; a file that does not fit is a one-line error."""
