""" "Did you mean" for an unknown field: the closest field name the model has at that place.

Pydantic reports an unknown key with its location only, not the model it was checked
against, so the location is walked down the model's annotations (through optional values,
lists and mappings) to the model, or models, that hold the key.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .sources import Loc


def _leaves(tp: Any) -> list[Any]:
    """The alternatives an annotation allows (``X | None`` -> X and None, ``Annotated`` unwrapped)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(tp) for leaf in _leaves(arg)]
    return [tp]


def _step(tp: Any, seg: str | int) -> list[Any]:
    """The annotations of what ``seg`` names inside a value of annotation ``tp``."""
    out: list[Any] = []
    for leaf in _leaves(tp):
        origin, args = typing.get_origin(leaf), typing.get_args(leaf)
        if isinstance(leaf, type) and issubclass(leaf, BaseModel):
            field = leaf.model_fields.get(str(seg))
            if field is not None:
                out.append(field.annotation)
        elif isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
            out.append(args[1])
        elif (
            isinstance(origin, type)
            and issubclass(origin, Sequence)
            and not issubclass(origin, str)
            and isinstance(seg, int)
            and args
        ):
            out.append(args[0])
    return out


def field_names_at(within: Any, loc: Loc) -> list[str]:
    """Every field name the model(s) at ``loc`` inside annotation ``within`` accept."""
    current = [within]
    for seg in loc:
        current = [tp for c in current for tp in _step(c, seg)]
    names: list[str] = []
    for tp in current:
        for leaf in _leaves(tp):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                names += [n for n in leaf.model_fields if n not in names]
    return names


def did_you_mean(within: Any, loc: Loc) -> str:
    """``"; did you mean 'heads'?"`` for the unknown key at ``loc``, or ``""``."""
    if within is None or not loc:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), field_names_at(within, loc[:-1]), 1, 0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
