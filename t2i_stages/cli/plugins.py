"""`t2i-stages plugins [NAME] [--kind K] [--params]`: installed components and their params.

Without NAME: one row per component (kind, name, providing package and version, summary);
``--params`` adds each component's params below its row. With NAME: that component (of every
kind that has one, or of ``--kind``) with its params model: each field, its type, its default
and its description, generated from the model as the JSON Schema is.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from ..errors import UnknownComponentError
from ..hookspecs import KIND_HOOKS
from ..registry import Entry, Registry, load_registry, unknown_name_message


def plugin_rows(registry: Registry, kind: str | None = None) -> list[dict[str, str]]:
    """One row per component: name, kind, plugin, package, version, summary."""
    kinds = [kind] if kind else list(KIND_HOOKS)
    rows = []
    for k in kinds:
        for name in registry.names(k):
            e = registry.get(k, name)
            rows.append(
                {
                    "kind": k,
                    "name": name,
                    "plugin": e.plugin.name,
                    "package": e.plugin.package,
                    "version": e.plugin.version,
                    "summary": e.spec.summary,
                }
            )
    return rows


def type_name(tp: Any) -> str:
    """A field's annotation as a reader writes it: ``int``, ``list[StageSlot]``, ``a | b``."""
    if tp is type(None):
        return "null"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


_BOUNDS = {
    "gt": ">",
    "ge": ">=",
    "lt": "<",
    "le": "<=",
    "min_length": "len >=",
    "max_length": "len <=",
}


def _bounds(field: Any) -> str:
    parts = [
        f"{sign} {getattr(m, attr)}"
        for m in field.metadata
        for attr, sign in _BOUNDS.items()
        if getattr(m, attr, None) is not None
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _plain(value: Any) -> Any:
    """A default as recipe data: models as their non-default fields, recursively."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _shown(value: Any) -> str:
    """A default as one line of YAML (``{type: words}``, ``[8, 16]``, ``null``)."""
    try:
        text = yaml.safe_dump(_plain(value), default_flow_style=True, sort_keys=False, width=10**6)
    except yaml.YAMLError:
        return repr(value)
    return text.strip().removesuffix("...").strip()


def param_rows(model: type[BaseModel]) -> list[dict[str, str]]:
    """One row per field of a params model: field, type (with its bounds), default, description."""
    rows = []
    for name, field in model.model_fields.items():
        if field.is_required():
            default = "required"
        else:
            default = _shown(field.get_default(call_default_factory=True))
        rows.append(
            {
                "field": name,
                "type": type_name(field.annotation) + _bounds(field),
                "default": default,
                "description": field.description or "",
            }
        )
    return rows


def _table(rows: list[dict[str, str]], cols: list[str], indent: str = "") -> list[str]:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in cols[:-1]}
    lines = [indent + "  ".join(c.upper().ljust(widths.get(c, 0)) for c in cols).rstrip()]
    for r in rows:
        lines.append(indent + "  ".join(r[c].ljust(widths.get(c, 0)) for c in cols).rstrip())
    return lines


def describe(entry: Entry) -> list[str]:
    """What ``plugins NAME`` prints for one component."""
    p = entry.plugin
    package = p.package if p.package != "<registered>" else p.name
    model = entry.spec.params
    lines = [f"{entry.kind} '{entry.name}' ({package} {p.version}, plugin '{p.name}')"]
    if entry.spec.summary:
        lines.append(f"  {entry.spec.summary}")
    lines += _params_lines(model, "  ")
    return lines


def _params_lines(model: type[BaseModel], indent: str) -> list[str]:
    rows = param_rows(model)
    if not rows:
        return [f"{indent}params: none"]
    doc = (model.__doc__ or "").strip().splitlines()
    head = f"{indent}params ({model.__name__})" + (f": {doc[0]}" if doc else "")
    return [head, *_table(rows, ["field", "type", "default", "description"], indent + "  ")]


def named_entries(registry: Registry, name: str, kind: str | None) -> list[Entry]:
    """Every component called ``name`` (of ``kind`` when given); an unknown name is an error
    with the closest known name."""
    kinds = [kind] if kind else list(KIND_HOOKS)
    found = [registry.get(k, name) for k in kinds if name in registry.components.get(k, {})]
    if not found:
        known = sorted({n for k in kinds for n in registry.names(k)})
        what = kind or "component"
        raise UnknownComponentError(
            "plugins: " + unknown_name_message(what, name, known, registry.load_errors)
        )
    return found


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help="list installed components (name, kind, providing package and version, summary); "
        "NAME shows one component's params",
        description="List every component that installed plugins provide; with NAME, show that "
        "component and its params (each field, its type, default and description).",
    )
    p.add_argument("name", nargs="?", default=None, help="a component name: show its params")
    p.add_argument("--kind", choices=list(KIND_HOOKS), help="only this kind of component")
    p.add_argument("--params", action="store_true", help="show every listed component's params")
    p.add_argument(
        "--check",
        action="store_true",
        help="also import every component's factory and prepare step, and exit 2 when a "
        "plugin failed to load or one of them fails to import (for a plugin package's CI)",
    )
    p.set_defaults(func=_plugins)


def _plugins(args: argparse.Namespace) -> int:
    registry = load_registry()
    if args.name:
        for i, entry in enumerate(named_entries(registry, args.name, args.kind)):
            print(("\n" if i else "") + "\n".join(describe(entry)))
    else:
        rows = plugin_rows(registry, args.kind)
        cols = ["kind", "name", "package", "version", "summary"]
        widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in cols[:-1]}
        print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in cols))
        for r in rows:
            pkg = r["package"] if r["package"] != "<registered>" else r["plugin"]
            r = {**r, "package": pkg}
            print("  ".join(r[c].ljust(widths.get(c, 0)) for c in cols).rstrip())
            if args.params:
                model = registry.get(r["kind"], r["name"]).spec.params
                print("\n".join(_params_lines(model, "    ")))
    problems = [str(err) for err in registry.load_errors]
    if args.check:  # listing stays torch-free; the check imports what a build would
        problems += registry.check_references()
    for line in problems:
        print(f"{'error' if args.check else 'warning'}: {line}", file=sys.stderr)
    return 2 if args.check and problems else 0
