"""`t2i-stages data preview|stats RECIPE`: look at a recipe's dataset before training on it.

Thin layer over ``t2i_stages.dataset_tools`` (``dataset_from_recipe``, ``preview_grid``,
``dataset_stats``).
"""

from __future__ import annotations

import argparse
import json

from .common import add_recipe_args


def _resolutions(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--resolutions expects sizes like 64,128 (got {text!r})"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="preview or summarise a recipe's dataset",
        description="Inspect the dataset a recipe names (only its data section is validated).",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(p))
    prev = dsub.add_parser("preview", help="save a grid of samples with their captions as a PNG")
    add_recipe_args(prev)
    prev.add_argument("--out", default="grid.png", help="output PNG path (default grid.png)")
    prev.add_argument(
        "--split", choices=("train", "test"), default="train", help="which split (default train)"
    )
    prev.add_argument("--count", type=int, default=16, help="number of samples (default 16)")
    prev.add_argument("--columns", type=int, default=4, help="grid columns (default 4)")
    prev.add_argument("--start", type=int, default=0, help="first sample index (default 0)")
    prev.add_argument(
        "--resolutions", type=_resolutions, default=None, help="per-stage sizes, e.g. 32,64"
    )
    prev.set_defaults(func=_preview)
    st = dsub.add_parser("stats", help="counts, vocabulary size and caption lengths")
    add_recipe_args(st)
    st.add_argument(
        "--split",
        choices=("train", "test", "both"),
        default="both",
        help="which split (default both)",
    )
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.set_defaults(func=_stats)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _preview(args: argparse.Namespace) -> int:
    from t2i_stages.dataset_tools import dataset_from_recipe, preview_grid

    ds = dataset_from_recipe(args.recipe, args.split, args.overrides, args.resolutions)
    out = preview_grid(ds, args.out, count=args.count, columns=args.columns, start=args.start)
    print(f"wrote {out} ({min(args.count, len(ds))} {args.split} samples)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from t2i_stages.dataset_tools import dataset_from_recipe, dataset_stats, format_stats

    splits = ("train", "test") if args.split == "both" else (args.split,)
    results = {
        s: dataset_stats(dataset_from_recipe(args.recipe, s, args.overrides)) for s in splits
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n\n".join(format_stats(r) for r in results.values()))
    return 0
