"""`t2i-stages new-plugin NAME --kind fusion`: scaffold a pip-installable plugin package.

The Python API is :func:`t2i_stages.scaffold.scaffold_plugin` (what it writes is described
there); this module is the command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..scaffold import KINDS, names_for, scaffold_plugin

__all__ = ["KINDS", "names_for", "register", "scaffold_plugin"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new-plugin",
        help="scaffold a pip-installable plugin package (fusion block, stage, conditioning)",
        description="Write a plugin package: pyproject.toml with the t2i_stages entry point, a "
        "working component of the chosen kind to edit, a tiny recipe that uses it and tests. "
        "Then `pip install -e FOLDER` and it appears in `t2i-stages plugins`.",
    )
    p.add_argument("name", help="plugin name, e.g. gated-attention (component gated_attention)")
    p.add_argument(
        "--kind", choices=KINDS, default="fusion", help="component kind (default fusion)"
    )
    p.add_argument("--out", type=Path, default=None, help="folder (default ./t2i-<name>)")
    p.set_defaults(func=_new_plugin)


def _new_plugin(args: argparse.Namespace) -> int:
    root = scaffold_plugin(args.name, args.kind, args.out)
    n = names_for(args.name)
    print(f"wrote {root}/ (component {args.kind} '{n['component']}', package {n['dist']})")
    print(f"next: pip install -e {root} && t2i-stages plugins --kind {args.kind}")
    return 0
