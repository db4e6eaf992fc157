"""What an importer plugin is, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .legacy import ReleaseFile


@dataclass
class ImportedRelease:
    """A release mapped onto the framework: a recipe and the checkpoint components.

    ``recipe`` is recipe data (it may ``extends: builtin:NAME``); ``components`` maps checkpoint
    component names (``generator``, ``matcher``, ``text_encoder``, ``discriminator_0``, ...) to
    state dicts in the framework's key names, each with ``sources[name]``, the file it came
    from; ``vocab`` is the word vocabulary (a ``WordVocab``) the text side was trained with.
    """

    recipe: dict[str, Any]
    components: dict[str, dict[str, Any]]
    sources: dict[str, str]
    release: str
    vocab: Any = None
    dropped: dict[str, list[str]] = field(default_factory=dict)  # component -> reference keys
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Importer(Protocol):
    """An importer plugin's component (kind ``importer``): one paper's release format."""

    def identify(self, files: list[ReleaseFile]) -> str | None:
        """The release these files look like (from their keys and shapes), or None."""

    def convert(self, files: list[ReleaseFile]) -> ImportedRelease:
        """Map the files onto the framework; a file that does not fit is a one-line error."""
