"""How long generating the default shapes dataset (and training its oracle) takes.

Not a test: run it by hand and copy the figures into docs/datasets.md.

    .venv/bin/python benchmarks/dataset_generation.py                 # default 10k/2k at 64/128/256
    .venv/bin/python benchmarks/dataset_generation.py --train 1000 --test 200 --workers 1
    .venv/bin/python benchmarks/dataset_generation.py --oracle 256    # also time the oracle

It always generates into a fresh temporary cache folder (deleted afterwards unless --keep), so
the numbers are first-use numbers, then times a second construction (the cache hit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from t2i_stages.plugins.datasets.shapes import ShapesDataset, ShapesParams
from t2i_stages.plugins.datasets.shapes.oracle import load_oracle


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--train", type=int, default=10_000, help="train images (default 10000)")
    ap.add_argument("--test", type=int, default=2_000, help="test images (default 2000)")
    ap.add_argument(
        "--resolutions", default="64,128,256", help="comma-separated sizes (default 64,128,256)"
    )
    ap.add_argument("--workers", type=int, default=0, help="render processes (0 = automatic)")
    ap.add_argument(
        "--oracle",
        type=int,
        nargs="*",
        default=[],
        help="also train the oracle at these resolutions",
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads for the oracle (default 1)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary cache folder")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = [int(r) for r in args.resolutions.split(",")]
    cache = Path(tempfile.mkdtemp(prefix="t2i-shapes-bench-"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": [round(v, 2) for v in load] if load else None,
        "train": args.train,
        "test": args.test,
        "resolutions": res,
    }
    try:
        p = ShapesParams(
            train_size=args.train,
            test_size=args.test,
            resolutions=res,
            cache_dir=str(cache),
            workers=args.workers,
        )
        t0 = time.perf_counter()
        tr = ShapesDataset(p, "train")
        t1 = time.perf_counter()
        te = ShapesDataset(p, "test")
        t2 = time.perf_counter()
        out["train_seconds"] = round(t1 - t0, 2)
        out["test_seconds"] = round(t2 - t1, 2)
        out["total_seconds"] = round(t2 - t0, 2)
        out["train_steps"] = tr.manifest["seconds"]
        out["workers"] = tr.manifest.get("workers")
        out["cache_bytes"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        t3 = time.perf_counter()
        ShapesDataset(p, "train", quiet=True)
        out["cache_hit_seconds"] = round(time.perf_counter() - t3, 3)
        t4 = time.perf_counter()
        for i in range(0, len(tr), max(1, len(tr) // 500)):
            tr[i]
        out["sample_ms"] = round(
            (time.perf_counter() - t4) * 1000 / len(range(0, len(tr), max(1, len(tr) // 500))), 3
        )
        del te
        for r in args.oracle:
            t5 = time.perf_counter()
            oracle = load_oracle(p, resolution=r)
            out[f"oracle_{r}"] = {"seconds": round(time.perf_counter() - t5, 1), **oracle.info}
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        out["load_average_at_end"] = [round(v, 2) for v in load] if load else None
    finally:
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
