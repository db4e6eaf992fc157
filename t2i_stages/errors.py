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
        # a value quoted in a message may hold line breaks; keep one problem per printed line
        self.lines = [_one_line(str(line)) for line in lines]
        super().__init__("\n".join(self.lines))


def _one_line(text: str) -> str:
    """Escape every character ``str.splitlines`` would break on (and other control chars)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
