"""Sample grids of several runs next to the real images: the same held-out captions and noise.

    python benchmarks/sample_strip.py RUN_DIR=LABEL [RUN_DIR=LABEL ...] --out docs/img/x.png [--n 8]
        [--stages]

The first run's test split gives ``n`` captions spread over it (the evaluation's captions, epoch
0); its real images are the top row, and every run's EMA generator draws them from the same noise
(``compare_families.sample_rows``), one row per run, labelled with its step. For looking at
samples beside the real thing before calling a quality figure done (docs/results.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def parse_run(arg: str) -> tuple[Path, str]:
    """``RUN_DIR=LABEL`` (or a bare RUN_DIR, labelled with its folder name)."""
    path, _, label = arg.partition("=")
    return Path(path), label or Path(path).name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=parse_run, help="RUN_DIR=LABEL")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--n", type=int, default=8, help="captions (columns)")
    p.add_argument(
        "--stages", action="store_true", help="a row per stage of each run, not the last only"
    )
    args = p.parse_args(argv)
    from compare_families import draw_grid, sample_rows

    from t2i_stages.errors import T2IError
    from t2i_stages.registry import load_registry

    for path, _ in args.runs:
        if not (path / "checkpoints").is_dir():
            print(f"error: {path}: not a run folder (no checkpoints/)", file=sys.stderr)
            return 2
    labels = [label for _, label in args.runs]
    dirs = {label: path for path, label in args.runs}
    try:
        captions, rows = sample_rows(labels, dirs, load_registry(), n=args.n, stages=args.stages)
    except T2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw_grid(captions, rows).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
