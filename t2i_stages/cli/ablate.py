"""`t2i-stages ablate ABLATION.yaml`: train every variant of an ablation and compare them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import T2IError
from .common import add_set_arg


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of integers"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="train and compare the variants of an ablation file",
        description="Read an ablation file (a base recipe and variants given as --set-style "
        "overrides), validate every variant before anything trains, train and evaluate each "
        "variant with the same seeds and budget (finished runs are skipped, started ones resume), "
        "and write table.md, table.csv, runs.csv and chart.png into the study folder.",
    )
    p.add_argument("ablation", help="path of an ablation YAML file")
    add_set_arg(
        p,
        "override a recipe field in every variant (repeatable), e.g. --set train.max_steps=10",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="study folder (default runs/ablations/<name>/)"
    )
    p.add_argument(
        "--seeds",
        type=_int_list,
        default=None,
        metavar="S,S,...",
        help="seeds instead of the file's",
    )
    p.add_argument(
        "--variants",
        default=None,
        metavar="NAME,NAME,...",
        help="only these variants (the reference variant always runs)",
    )
    p.add_argument(
        "--records",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the finished runs' records (recipe, marker, metrics) in DIR, to commit or "
        "carry: runs found there are restored first and skipped; after the study every "
        "finished run and the comparison are saved there (--plan reads the study folder only)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if present)")
    g = p.add_argument_group(
        "launching", "where the runs execute (docs/recipes.md, 'Launchers'); results are the same"
    )
    g.add_argument(
        "--launcher",
        choices=("local", "processes", "ray"),
        default="local",
        help="local: one run after another in this process (default); processes: --jobs runs "
        "at once as local processes; ray: one Ray task per run (pip install 't2i-stages[ray]')",
    )
    g.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="processes: runs at once (default: the GPU slots, else cores / --cpus-per-run)",
    )  # fmt: skip
    g.add_argument(
        "--address", default=None, metavar="ADDR",
        help="ray: the cluster to join (auto, or HOST:PORT; default: start a local Ray)",
    )  # fmt: skip
    g.add_argument(
        "--cpus-per-run", type=int, default=None, metavar="C",
        help="processes, ray: each run's CPU cores (its torch threads; Ray's num_cpus); "
        "default: the study file's resources.cpus",
    )  # fmt: skip
    g.add_argument(
        "--gpus-per-run", type=float, default=None, metavar="G",
        help="processes, ray: each run's GPUs; a share packs runs onto one GPU (0.25: four per "
        "GPU); default: the study file's resources.gpus",
    )  # fmt: skip
    p.add_argument(
        "--plan",
        action="store_true",
        help="only validate every variant and print the runs and what each changes",
    )
    p.set_defaults(func=_ablate)


def _ablate(args: argparse.Namespace) -> int:
    from ..ablation import LaunchSettings, plan_ablation, run_ablation

    launch = LaunchSettings(
        args.launcher, args.jobs, args.address, args.cpus_per_run, args.gpus_per_run
    )
    launch.check()  # before the study is planned: a misplaced flag fails in a second

    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    if args.seeds is not None and not args.seeds:
        raise T2IError("--seeds: give at least one seed")
    if args.plan:
        plan = plan_ablation(args.ablation, args.overrides, None, args.out, args.seeds, variants)
        ref = plan.spec.reference_variant.name
        print(f"{args.ablation}: ok, {len(plan.runs)} runs in {plan.out}")
        for v in plan.variants:
            tag = " (reference)" if v.name == ref else ""
            changed = ", ".join(plan.differences.get(v.name, [])) or "-"
            print(f"  {v.name}{tag}: {'; '.join(v.changes) or 'base recipe'}")
            if v.name != ref:
                print(f"    resolved recipe differs at: {changed}")
            for run in plan.runs_of(v.name):
                print(f"    seed {run.seed}: {run.status} ({run.out})")
        return 0
    result = run_ablation(
        args.ablation,
        args.overrides,
        out_dir=args.out,
        seeds=args.seeds,
        variants=variants,
        device=args.device,
        launch=launch,
        records=args.records,
    )
    if result.stopped:
        return 0
    print(result.table_md.read_text(encoding="utf-8"))
    return 0
