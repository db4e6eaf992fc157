"""`t2i-stages generate --text ... --out grid.png`: images from a run (PyTorch) or a deployment
folder (ONNX Runtime), with the same arguments and the same noise for a seed.

A thin layer over :func:`t2i_stages.export.api.generate`. Nothing here imports torch: the ONNX
path needs only onnxruntime, numpy, PIL and the vocabulary. (The ``t2i-stages`` program itself
loads every command; on a machine without torch use ``python t2i_onnx_runtime.py`` from the
deployment folder, or ``python -m t2i_stages.export.runtime``.)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate an image grid from captions with a run (PyTorch) or an ONNX deployment",
        description="Generate N images per caption and save them as one PNG grid (a row per "
        "caption). --model uses the run's EMA generator in PyTorch; --onnx uses an exported "
        "deployment with ONNX Runtime. Asking for cuda or tensorrt and not getting it is an "
        "error unless --allow-cpu-fallback is given.",
    )
    p.add_argument("--text", action="append", required=True, help="a caption (repeatable)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="run folder (PyTorch backend)")
    src.add_argument("--onnx", type=Path, help="deployment folder (ONNX Runtime backend)")
    p.add_argument("--n", type=int, default=8, help="images per caption (default 8)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--provider",
        choices=("auto", "cuda", "tensorrt", "cpu"),
        default="auto",
        help="where to run (default auto: CUDA when usable here, else the CPU; tensorrt is "
        "ONNX-only)",
    )
    p.add_argument(
        "--allow-cpu-fallback",
        action="store_true",
        help="run on the CPU (with a warning) when the requested provider is unavailable",
    )
    p.add_argument("--stage", type=int, default=-1, help="which stage's images (-1 = last)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="--onnx: the graphs (auto = fp32; fp16 needs an export made with --fp16); "
        "--model: the autocast (auto = bf16 only where the device runs it natively)",
    )
    p.add_argument("--out", type=Path, required=True, help="PNG file for the grid")
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from ..export.api import generate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _call(generate, args)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    shape = "x".join(str(d) for d in res.images[args.stage].shape)
    used = sorted({p[0] for p in res.providers.values()})
    print(f"{res.path} ({res.backend} on {', '.join(used)}; images {shape})")
    return 0


def _call(generate, args: argparse.Namespace):
    return generate(
        args.text,
        args.out,
        model=args.model,
        onnx=args.onnx,
        n=args.n,
        seed=args.seed,
        provider=args.provider,
        allow_cpu_fallback=args.allow_cpu_fallback,
        stage=args.stage,
        threads=args.threads,
        precision=args.precision,
    )
