"""`t2i-stages validate RECIPE`: check a recipe in both phases without building anything."""

from __future__ import annotations

import argparse

from .common import add_recipe_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a recipe (static schema, then every plugin's params)",
        description="Validate a recipe: the static schema first, then each component's params "
        "against its plugin. Errors print as FILE:LINE: PATH: MESSAGE and exit 2.",
    )
    add_recipe_args(p)
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    recipe, _ = load_from_args(args)
    print(f"{args.recipe}: ok ({recipe.name})")
    return 0
