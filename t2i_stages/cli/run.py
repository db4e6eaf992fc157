"""`t2i-stages run RECIPE`: validate, build every component, and (with the engine) train."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..build import build_components, write_resolved_recipe
from .common import add_recipe_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a recipe end to end",
        description="Validate a recipe, build every component it names, and run it. "
        "The resolved recipe (with plugin versions) is written to the output folder.",
    )
    add_recipe_args(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<name>/)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    recipe, registry = load_from_args(args)
    out = args.out or Path("runs") / recipe.name
    path = write_resolved_recipe(recipe, registry, out)
    components = build_components(recipe, registry)
    for name, comp in components.items():
        print(f"built {name}: {type(comp).__name__}")
    print(f"resolved recipe: {path}")
    return 0
