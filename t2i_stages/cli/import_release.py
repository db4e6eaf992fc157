"""`t2i-stages import FAMILY FILES... --out RUN`: a paper's released files as a run folder;
a thin layer over ``t2i_stages.importing.api.import_release``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_set_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="turn a paper's released checkpoint files into a run folder (eval, generate, "
        "export, train.init_from)",
        description="Read a paper's released files (torch pickles, read with weights_only=True "
        "only; safetensors) and write an ordinary run folder: recipe.resolved.yaml, vocab.json, "
        "a safetensors checkpoint and import.json (where every tensor came from). FAMILY is an "
        "importer (see `t2i-stages plugins --kind importer`), or auto to tell the release by "
        "its keys and shapes.",
    )
    p.add_argument("family", help="importer name (attngan, dmgan, dfgan, grgan, damsm) or auto")
    p.add_argument("files", nargs="+", type=Path, help="the released files")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (must be new)")
    add_set_arg(
        p,
        "change the importer's recipe (repeatable), e.g. where the release's dataset is: "
        "--set data.dataset.params.root=data/birds",
    )
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from ..importing.api import import_release

    import_release(
        args.family,
        args.files,
        args.out,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        overrides=args.overrides,
    )
    print(f"wrote {args.out}")
    return 0
