"""Where two plain-data recipes differ: for resume checks and ablation plans."""

from __future__ import annotations

from typing import Any

from .sources import Loc


def diff_paths(a: Any, b: Any, prefix: Loc = ()) -> list[Loc]:
    """Paths where two plain-data trees differ (a list of another length differs as a whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Loc] = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                out.append((*prefix, key))
            else:
                out.extend(diff_paths(a[key], b[key], (*prefix, key)))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(diff_paths(x, y, (*prefix, i)))
        return out
    return [] if a == b else [prefix]


def fmt(loc: Loc) -> str:
    return ".".join(map(str, loc)) or "<root>"


def changed_fields(old: Any, new: Any) -> list[tuple[str, str]]:
    """``(path, "path: old -> new")`` for each difference between two plain-data recipes."""
    return [(fmt(p), f"{fmt(p)}: {_at(old, p)!r} -> {_at(new, p)!r}") for p in diff_paths(old, new)]


_MISSING = "<absent>"


def _at(data: Any, loc: Loc) -> Any:
    for key in loc:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return _MISSING
    return data
