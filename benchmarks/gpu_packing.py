"""How many of a study's runs fit on one GPU as concurrent processes, and the speed-up (issue 21).

For each packing (``--gpus-per-run`` 1, 0.5, 0.25, ...: 1, 2, 4, ... runs at once on one GPU) the
same study is trained from scratch with ``ablate --launcher processes`` in a fresh folder; the
wall time of the whole study, the runs that failed (out of memory) and the GPU's peak memory
(``nvidia-smi``, sampled every second) are recorded. The speed-up is the 1-run-per-GPU wall time
over each packing's; "fits" is the largest packing whose runs all finished.

    .venv/bin/python benchmarks/gpu_packing.py --json gpu_packing.json --docs

Needs a CUDA GPU (no GPU was available where this was written: docs/benchmarks.md keeps the
section open). CUDA_VISIBLE_DEVICES picks the GPU; only the first visible one is used.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import bench_common as bc

DEFAULT_STUDY = bc.REPO / "recipes" / "ablations" / "grgan-stages.yaml"
DEFAULT_SET = ["train.max_minutes=null", "train.max_steps=300"]


def packed_runs(share: float) -> int:
    """Runs that share one GPU at ``--gpus-per-run share``."""
    return max(1, int(1 / share + 1e-9))


class MemorySampler:
    """The first GPU's peak used memory (MiB) while it runs, from ``nvidia-smi``."""

    def __init__(self, every: float = 1.0):
        self.every, self.peak, self._stop = every, None, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        query = [
            "nvidia-smi",
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ]
        while not self._stop.is_set():
            try:
                used = float(
                    subprocess.run(query, capture_output=True, text=True).stdout.split()[0]
                )
                self.peak = used if self.peak is None else max(self.peak, used)
            except (OSError, ValueError, IndexError):
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def measure(study: Path, share: float, seeds: list[int], overrides: list[str], out: Path) -> dict:
    from t2i_stages.ablation import LaunchSettings, run_ablation
    from t2i_stages.ablation.spec import AblationError

    if out.exists():
        shutil.rmtree(out)
    launch = LaunchSettings("processes", gpus_per_run=share)
    error = None
    start = time.perf_counter()
    with MemorySampler() as memory:
        try:
            result = run_ablation(study, overrides, out_dir=out, seeds=seeds, launch=launch)
            trained, failed = len(result.trained), []
        except AblationError as exc:
            error, trained, failed = str(exc), None, [str(exc)]
    wall = time.perf_counter() - start
    runs = sorted(out.glob("*/seed-*/ablation-run.json"))
    return {
        "gpus_per_run": share,
        "concurrent": packed_runs(share),
        "wall_seconds": wall,
        "finished": len(runs) if trained is None else trained,
        "failed": failed,
        "error": error,
        "peak_gpu_mib": memory.peak,
    }


def table(rows: list[dict]) -> str:
    base = next((r for r in rows if r["gpus_per_run"] == 1 and not r["failed"]), None)
    cells = []
    for r in rows:
        speed = base["wall_seconds"] / r["wall_seconds"] if base and not r["failed"] else None
        cells.append([
            f"{r['gpus_per_run']:g}", r["concurrent"], r["finished"],
            "yes" if not r["failed"] else "no (a run failed)",
            bc.fmt_num(r["wall_seconds"] / 60), bc.fmt_num(speed),
            bc.fmt_num(r["peak_gpu_mib"] / 1024) if r["peak_gpu_mib"] else "n/a",
        ])  # fmt: skip
    header = ["--gpus-per-run", "runs at once", "runs finished", "all fit", "study minutes",
              "speed-up", "peak GPU GB"]  # fmt: skip
    return bc.markdown_table(header, cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", type=Path, default=DEFAULT_STUDY)
    p.add_argument("--seeds", default="0,1", help="seeds of the study (more runs to pack)")
    p.add_argument("--set", dest="overrides", action="append", default=None,
                   help=f"recipe overrides for every run (default {' '.join(DEFAULT_SET)})")  # fmt: skip
    p.add_argument("--packings", type=float, nargs="+", default=[1, 0.5, 0.25, 0.125])
    p.add_argument("--out", type=Path, default=Path("runs/bench-gpu-packing"))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--docs", action="store_true", help="write the docs/benchmarks.md section")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_packing: needs a CUDA GPU", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = args.overrides if args.overrides is not None else list(DEFAULT_SET)
    info = bc.machine_info()
    rows = []
    for share in args.packings:
        row = measure(args.study, share, seeds, overrides, args.out / f"share-{share:g}")
        rows.append(row)
        print(table(rows), flush=True)
    command = bc.command_line("gpu_packing.py", sys.argv[1:] if argv is None else argv)
    data = {"machine": info, "study": str(args.study), "seeds": seeds, "overrides": overrides,
            "rows": rows, "command": command}  # fmt: skip
    if args.json:
        bc.write_json(args.json, data)
    if args.docs:
        body = "\n\n".join([
            f"### {info['cuda']} ({time.strftime('%Y-%m-%d')})", bc.machine_line(info),
            f"Study `{args.study.relative_to(bc.REPO) if args.study.is_absolute() else args.study}`"
            f", seeds {args.seeds}, `{' '.join(overrides)}`.", table(rows),
            f"Rerun: `{command}`", bc.FINDING_PLACEHOLDER,
        ])  # fmt: skip
        bc.write_docs_section(bc.DOCS, "gpu_packing", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
