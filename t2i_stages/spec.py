"""What a plugin hands to the registry for each component it provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base class for plugin parameter models: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """For components that take no parameters."""


@dataclass(frozen=True)
class ComponentSpec:
    """A component a plugin provides.

    ``factory(params, **context)`` builds it from its validated ``params`` model instance; the
    context keywords are whatever the caller of that kind documents (for example a stage gets
    ``in_channels`` and ``text_dim``).
    """

    factory: Callable[..., Any]
    params: type[BaseModel] = NoParams
    summary: str = ""
