"""`t2i-stages run RECIPE`: pretrain the matcher if needed, train, evaluate, report."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ..errors import T2IError
from .common import add_recipe_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate a recipe end to end",
        description="Validate a recipe, pretrain its matcher when needed (cached), train the GAN, "
        "evaluate it and write the run folder (resolved recipe, checkpoints, samples, attention "
        "maps, TensorBoard logs, metrics.json, report.html).",
    )
    add_recipe_args(p, optional=True)
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<name>/)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue from the newest good checkpoint (of DIR, default the run folder); "
        "without RECIPE the run's own recipe.resolved.yaml is used",
    )
    p.add_argument(
        "--allow-changes",
        action="store_true",
        help="let --resume continue with a recipe that differs from the run's (the changes are "
        "listed and recorded in recipe.changes.yaml); without it such a resume is refused",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if present)")
    p.add_argument(
        "--nproc-per-node",
        type=int,
        default=None,
        metavar="N",
        help="train with N processes (re-launches through torch.distributed.run)",
    )
    p.add_argument(
        "--nnodes",
        type=int,
        default=None,
        metavar="N",
        help="train across N machines: run this same command on each; they meet at "
        "--rdzv-endpoint (torchrun's c10d rendezvous) and every one runs --nproc-per-node "
        "processes (default 1)",
    )
    p.add_argument(
        "--rdzv-endpoint",
        default=None,
        metavar="HOST:PORT",
        help="with --nnodes: where the machines meet (the first node's address, a free port)",
    )
    p.add_argument(
        "--rdzv-id",
        default=None,
        metavar="ID",
        help="with --nnodes: a job id all machines share (default $SLURM_JOB_ID, else t2i-stages)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    p.set_defaults(func=_run)


LAUNCH_FLAGS = ("--nproc-per-node", "--nnodes", "--rdzv-endpoint", "--rdzv-id")


def _without_launch_flags(argv: list[str]) -> list[str]:
    """The command line minus our torchrun flags (both "--x N" and "--x=N" forms)."""
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in LAUNCH_FLAGS:
            skip = True
        elif not a.startswith(tuple(f"{f}=" for f in LAUNCH_FLAGS)):
            cleaned.append(a)
    return cleaned


def torchrun_args(args: argparse.Namespace) -> list[str]:
    """torchrun's own flags for this run: one machine (``--standalone``) or ``--nnodes``
    machines meeting at ``--rdzv-endpoint`` through the c10d rendezvous."""
    nproc = args.nproc_per_node or 1
    if not args.nnodes:
        return ["--standalone", f"--nproc-per-node={nproc}"]
    rdzv_id = args.rdzv_id or os.environ.get("SLURM_JOB_ID") or "t2i-stages"
    return [
        f"--nnodes={args.nnodes}",
        f"--nproc-per-node={nproc}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={args.rdzv_endpoint}",
        f"--rdzv-id={rdzv_id}",
    ]


def _relaunch(args: argparse.Namespace) -> int:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *torchrun_args(args),
        "-m",
        "t2i_stages.cli.main",
        *_without_launch_flags(sys.argv[1:]),
    ]
    return subprocess.call(cmd, env=os.environ.copy())


def _check_launch_flags(args: argparse.Namespace) -> None:
    if args.nproc_per_node is not None and args.nproc_per_node < 1:
        raise T2IError(f"--nproc-per-node {args.nproc_per_node}: must be at least 1")
    if args.nnodes is not None and args.nnodes < 1:
        raise T2IError(f"--nnodes {args.nnodes}: must be at least 1")
    if args.nnodes and not args.rdzv_endpoint:
        raise T2IError("--nnodes: give --rdzv-endpoint HOST:PORT, where the machines meet")
    if not args.nnodes and (args.rdzv_endpoint or args.rdzv_id):
        raise T2IError("--rdzv-endpoint/--rdzv-id: give --nnodes N as well")
    if args.rdzv_endpoint:
        host, _, port = args.rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise T2IError(f"--rdzv-endpoint {args.rdzv_endpoint}: give HOST:PORT")


def _run(args: argparse.Namespace) -> int:
    _check_launch_flags(args)
    world = (args.nproc_per_node or 1) * (args.nnodes or 1)
    if world > 1 and "WORLD_SIZE" not in os.environ:
        return _relaunch(args)
    from ..training import train

    out = args.out
    if isinstance(args.resume, str):
        if out is not None and Path(args.resume) != out:
            raise T2IError("--resume DIR and --out name different folders; give one")
        out = Path(args.resume)
    if args.recipe is None:
        if not isinstance(args.resume, str):
            raise T2IError("run: give a RECIPE, or --resume RUN to continue a run with its own")
        args.recipe = str(out / "recipe.resolved.yaml")
        if not Path(args.recipe).is_file():
            raise T2IError(f"{out}: not a run folder (no recipe.resolved.yaml)")
    recipe, registry = load_from_args(args)
    summary = train(
        recipe,
        registry,
        out_dir=out,
        resume=bool(args.resume),
        device=args.device,
        evaluate=not args.no_eval,
        resume_command=resume_command(args, out or Path("runs") / recipe.name),
        allow_changes=args.allow_changes,
    )
    if summary.get("signal"):
        return 0  # the engine printed how to resume; a requested stop is not a failure
    if int(os.environ.get("RANK", "0")) == 0:
        if summary.get("metrics"):
            from ..evaluation.report import format_table

            print(format_table(summary["metrics"]))
        if "report" in summary:
            print(f"report: {summary['report']}")
        print(f"run folder: {summary['out']}")
    return 0


def resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command line that continues this run from its newest good checkpoint."""
    parts = ["t2i-stages", "run", args.recipe]
    if args.recipe == str(out / "recipe.resolved.yaml") and not args.overrides:
        parts = ["t2i-stages", "run"]  # the run's own recipe: --resume finds it
    for item in args.overrides:
        parts += ["--set", item]
    if args.no_eval:
        parts.append("--no-eval")
    if args.device:
        parts += ["--device", args.device]
    if args.nproc_per_node:
        parts += ["--nproc-per-node", str(args.nproc_per_node)]
    if args.nnodes:
        parts += ["--nnodes", str(args.nnodes), "--rdzv-endpoint", args.rdzv_endpoint]
        if args.rdzv_id:
            parts += ["--rdzv-id", args.rdzv_id]
    parts += ["--resume", str(out)]
    return shlex.join(parts)
