"""`t2i-stages eval RUN_DIR`: score a trained run; `t2i-stages eval --images DIR`: score given
images. A thin layer over ``evaluate_run_dir`` and ``evaluate_images``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from .common import add_set_arg

IMAGES_ONLY = ("captions", "recipe", "overrides", "reference_run", "strict")


def register(sub: argparse._SubParsersAction) -> None:
    from ..recipe.protocols import PRESETS

    p = sub.add_parser(
        "eval",
        help="evaluate a trained run, or a folder of images (FID/KID, IS, R-precision, CMD, "
        "CLIP score, attributes)",
        description="Generate from the test captions with the run's EMA generator and write "
        "metrics.json (every number with its protocol) and metrics.md (a table) into a new "
        "folder RUN_DIR/evals/<metrics>-n<N>-seed<S>-<time>/ (the training-time metrics.json and "
        "earlier evaluations are kept); the numbers also go to the run's TensorBoard log. Metrics come from --metrics, else the recipe's eval.metrics, else the defaults "
        "that need no downloaded file (FD/KD in the matcher's space, R-precision, attribute "
        "accuracy on shapes). With --images DIR instead of RUN_DIR, score the images in DIR "
        "(another codebase's samples, or real images as the floor) the same way, against the "
        "test split, matcher and metrics of --recipe RECIPE or --run RUN_DIR; the results go to "
        "DIR/evals/<metrics>-n<N>-<time>/.",
    )
    p.add_argument(
        "run_dir",
        type=Path,
        nargs="?",
        default=None,
        help="run folder (with recipe.resolved.yaml); leave it out with --images",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        metavar="NAME[:KEY=VALUE...]",
        help="metric plugins to run, e.g. fid:extractor=matcher r_precision:encoder=held_out "
        "(see `t2i-stages plugins --kind metric`)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="images (default eval.num_samples; with --images: all of them)",
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
    p.add_argument("--seed", type=int, default=None, help="noise seed (default 100)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a checkpoint folder to use (the run's, or with --images that of --run)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for metrics.json (default: a new RUN_DIR/evals/... or DIR/evals/... folder)",
    )
    g = p.add_argument_group("given images")
    g.add_argument(
        "--images",
        type=Path,
        default=None,
        metavar="DIR",
        help="score the images in DIR instead of a run's samples (its sidecar captions: searched "
        "recursively)",
    )
    g.add_argument(
        "--captions",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help='one {"image": "path/relative/to/DIR.png", "caption": "..."} per line '
        "(default: each image's sidecar .txt, a.png + a.txt)",
    )
    g.add_argument(
        "--recipe",
        default=None,
        help="the reference: this recipe's test split, matcher (pretrained or cached), oracle "
        "and eval.metrics",
    )
    add_set_arg(
        g,
        "override a field of --recipe (repeatable)",
    )
    g.add_argument(
        "--run",
        dest="reference_run",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="the reference: a trained run's recipe and its trained matcher",
    )
    g.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad file (default: skip bad files and report them)",
    )
    p.set_defaults(func=_eval)


def _check(args: argparse.Namespace) -> None:
    """One line for arguments that do not go together."""
    from ..errors import T2IError

    if args.num_samples is not None and args.num_samples < 2:
        raise T2IError("--num-samples must be at least 2")
    if args.run_dir is None and args.images is None:
        raise T2IError("give RUN_DIR to score a run's samples, or --images DIR to score images")
    if args.run_dir is not None and args.images is not None:
        raise T2IError(
            "give RUN_DIR or --images DIR, not both (to score images against a run: "
            "--images DIR --run RUN_DIR)"
        )
    if args.images is None:
        given = [a for a in IMAGES_ONLY if getattr(args, a)]
        if given:
            flag = {"overrides": "set", "reference_run": "run"}.get(given[0], given[0])
            raise T2IError(f"--{flag} goes with --images DIR")
        return
    if args.seed is not None:
        raise T2IError("--seed has no use with --images (no noise is drawn)")
    if args.protocol is not None:
        raise T2IError(
            "--protocol goes with RUN_DIR; with --images, choose the metrics with --metrics or "
            "the reference recipe's eval section"
        )
    if (args.recipe is None) == (args.reference_run is None):
        raise T2IError(
            "--images needs its reference: exactly one of --recipe RECIPE and --run RUN_DIR"
        )
    if args.checkpoint is not None and args.reference_run is None:
        raise T2IError("--checkpoint picks a run's checkpoint: give it with --run RUN_DIR")
    if args.overrides and args.recipe is None:
        raise T2IError("--set changes --recipe; a run's recipe is its own")


def _eval(args: argparse.Namespace) -> int:
    import sys

    from ..evaluation import evaluate_run_dir, format_table

    _check(args)

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    if args.images is not None:
        report = _eval_images(args, log)
    else:
        report = evaluate_run_dir(
            args.run_dir,
            metrics=args.metrics,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            noise_seed=100 if args.seed is None else args.seed,
            device=args.device,
            out_dir=args.out,
            checkpoint=args.checkpoint,
            log=log,
            progress=True,
            protocol=args.protocol,
        )
    print(format_table(report))
    print(f"wrote {Path(report['folder']) / 'metrics.json'}")
    return 0


def _eval_images(args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    """``evaluate_images``; its bad-file report prints as one ``warning:`` line when it comes."""
    import sys
    import warnings

    from ..data_files import DataWarning
    from ..evaluation import evaluate_images

    with warnings.catch_warnings():  # restores showwarning and the filters on the way out
        warnings.simplefilter("always", DataWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DataWarning):
                print(f"warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return evaluate_images(
            args.images,
            args.captions,
            recipe=args.recipe,
            overrides=args.overrides,
            run=args.reference_run,
            checkpoint=args.checkpoint,
            metrics=args.metrics,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            device=args.device,
            out_dir=args.out,
            strict=args.strict,
            log=log,
            progress=True,
        )
