"""`t2i-stages env`: the machine facts a bug report needs (CPU ISA, versions, auto choices)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "env",
        help="print the machine facts for a bug report (CPU ISA, threads, versions, GPUs, "
        "what precision auto picks, caches)",
        description="Print the CPU model and its ISA flags (AVX2, AVX-512, AVX512-BF16, AMX), "
        "thread counts, torch / ONNX Runtime / CUDA versions, the GPUs, what `precision: auto` "
        "and `threads: null` resolve to on this machine, and where $T2I_STAGES_HOME and its "
        "caches are. Paste its output into a bug report.",
    )
    p.add_argument("--json", action="store_true", help="print the same facts as JSON")
    p.set_defaults(func=_env)


def _env(args: argparse.Namespace) -> int:
    from ..environment import collect_environment, format_environment

    env = collect_environment()
    print(json.dumps(env, indent=2) if args.json else format_environment(env))
    return 0
