"""`t2i-stages plugins [--kind K]`: list every installed component with its provider."""

from __future__ import annotations

import argparse
import sys

from ..hookspecs import KIND_HOOKS
from ..registry import Registry, load_registry


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help="list installed components (name, kind, providing package and version, summary)",
        description="List every component that installed plugins provide.",
    )
    p.add_argument("--kind", choices=list(KIND_HOOKS), help="only this kind of component")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 2 when a plugin failed to load (for a plugin package's CI)",
    )
    p.set_defaults(func=_plugins)


def _plugins(args: argparse.Namespace) -> int:
    registry = load_registry()
    rows = plugin_rows(registry, args.kind)
    cols = ["kind", "name", "package", "version", "summary"]
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in cols[:-1]}
    print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in cols))
    for r in rows:
        pkg = r["package"] if r["package"] != "<registered>" else r["plugin"]
        r = {**r, "package": pkg}
        print("  ".join(r[c].ljust(widths.get(c, 0)) for c in cols).rstrip())
    for err in registry.load_errors:
        print(f"{'error' if args.check else 'warning'}: {err}", file=sys.stderr)
    return 2 if args.check and registry.load_errors else 0
