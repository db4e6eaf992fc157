"""`t2i-stages eval RUN_DIR`: score a trained run; a thin layer over ``evaluate_run_dir``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..recipe.protocols import PRESETS

    p = sub.add_parser(
        "eval",
        help="evaluate a trained run (FID/KID, IS, R-precision, CMD, CLIP score, attributes)",
        description="Generate from the test captions with the run's EMA generator and write "
        "metrics.json (every number with its protocol) and metrics.md (a table) into a new "
        "folder RUN_DIR/evals/<metrics>-n<N>-seed<S>-<time>/ (the training-time metrics.json and "
        "earlier evaluations are kept); the numbers also go to the run's TensorBoard log. Metrics come from --metrics, else the recipe's eval.metrics, else the defaults "
        "that need no downloaded file (FD/KD in the matcher's space, R-precision, attribute "
        "accuracy on shapes).",
    )
    p.add_argument("run_dir", type=Path, help="run folder (with recipe.resolved.yaml)")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        metavar="NAME[:KEY=VALUE...]",
        help="metric plugins to run, e.g. fid:extractor=matcher r_precision:encoder=held_out "
        "(see `t2i-stages plugins --kind metric`)",
    )
    p.add_argument(
        "--num-samples", type=int, default=None, help="images (default eval.num_samples)"
    )
    p.add_argument(
        "--protocol",
        default=None,
        choices=list(PRESETS),
        help="evaluate under a paper's protocol preset (sample count, metrics, Inception, "
        "resize, uint8 round-trip; docs/metrics.md) instead of the run's eval section; "
        "--metrics and --num-samples still win",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default eval.batch_size")
    p.add_argument("--seed", type=int, default=100, help="noise seed (default 100)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint folder to use")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for metrics.json (default: a new RUN_DIR/evals/... folder)",
    )
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    import sys

    from ..evaluation import evaluate_run_dir, format_table

    if args.num_samples is not None and args.num_samples < 2:
        from ..errors import T2IError

        raise T2IError("--num-samples must be at least 2")
    report = evaluate_run_dir(
        args.run_dir,
        metrics=args.metrics,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        noise_seed=args.seed,
        device=args.device,
        out_dir=args.out,
        checkpoint=args.checkpoint,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        progress=True,
        protocol=args.protocol,
    )
    print(format_table(report))
    print(f"wrote {Path(report['folder']) / 'metrics.json'}")
    return 0
