"""`t2i-stages schema`: print the JSON Schema of recipes with every installed plugin."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..recipe.jsonschema import recipe_json_schema
from ..registry import load_registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of recipes (for editor completion)",
        description="Print the JSON Schema of recipes, with every installed plugin's params. Point "
        "your editor at it with '# yaml-language-server: $schema=recipe.schema.json'.",
    )
    p.add_argument("--out", type=Path, default=None, help="write to this file instead of stdout")
    p.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(recipe_json_schema(load_registry()), indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0
