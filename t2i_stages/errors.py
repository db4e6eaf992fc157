"""User-facing errors: each prints as one line and makes the CLI exit with code 2."""

from __future__ import annotations


class T2IError(Exception):
    """An error caused by the user's input (recipe, data, checkpoint, plugin, argument)."""

    exit_code = 2


class PluginError(T2IError):
    """A plugin could not be loaded, registered or built."""


class UnknownComponentError(T2IError):
    """A recipe names a component no installed plugin provides."""


class DuplicateComponentError(PluginError):
    """Two plugins provide a component of the same kind under one name."""


class RecipeError(T2IError):
    """A recipe is invalid; carries one ``file:line: path: message`` line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))
