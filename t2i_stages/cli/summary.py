"""`t2i-stages summary RECIPE`: parameter counts and output shapes (``t2i_stages.summary``)."""

from __future__ import annotations

import argparse
import json

from ..errors import T2IError
from ..registry import load_registry
from .common import add_recipe_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="parameter counts and output shapes of a recipe's generator and discriminators",
        description="Build the recipe's generator and discriminators and print, per component, "
        "the parameter count, each stage's output shape and attention-map shape, for a batch "
        "of 2, without training. Only the model sections of the recipe are validated.",
    )
    add_recipe_args(p)
    p.add_argument("--batch-size", type=int, default=2, help="batch size of the pass (default 2)")
    p.add_argument(
        "--words", type=int, default=12, help="word positions T of the random captions (12)"
    )
    p.add_argument(
        "--device",
        default="meta",
        help="'meta' (default: exact shapes, no compute) or a real device such as cpu",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_summary)


def _summary(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.words < 1:
        raise T2IError("--batch-size and --words must be at least 1")
    registry = load_registry()
    import torch

    from ..summary import load_model_recipe, summarize

    recipe = load_model_recipe(args.recipe, args.overrides, registry)
    try:
        device = str(torch.device(args.device))
    except RuntimeError as exc:
        raise T2IError(f"--device {args.device}: {exc}") from None
    table = summarize(recipe, registry, args.batch_size, args.words, device)
    if args.json:
        print(json.dumps(table.as_dict(), indent=2))
    else:
        print(f"{args.recipe}: {getattr(recipe, 'name', '(unnamed)')}")
        print(table.to_text())
    return 0
