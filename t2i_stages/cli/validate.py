"""`t2i-stages validate RECIPE [--build]`: check a recipe in every phase; without ``--build``
nothing is built and no torch is imported."""

from __future__ import annotations

import argparse

from .common import add_recipe_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a recipe (schema, every plugin's params, then across components)",
        description="Validate a recipe: the schema first, then each component's params against "
        "its plugin, then the checks across components (an adversarial loss, one discriminator "
        "per generator stage, the stages a loss names, a matcher for a matching loss) from the "
        "plugins' static facts, so nothing is built and torch is not imported. --build also "
        "builds the generator (on the meta device) and the losses, as `run` does, which finds "
        "what only a build can (a fusion block that cannot take its conditioning level). "
        "Errors print as FILE:LINE: PATH: MESSAGE and exit 2.",
    )
    add_recipe_args(p)
    p.add_argument(
        "--build",
        action="store_true",
        help="also build the generator and the losses (imports torch; what `run` checks)",
    )
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    recipe, _ = load_from_args(args, build=args.build)
    print(f"{args.recipe}: ok ({recipe.name})")
    return 0
