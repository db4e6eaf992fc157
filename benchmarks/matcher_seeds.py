"""How robust is a recipe's matcher pretraining? R-precision over seeds, on this CPU kind.

    .venv/bin/python benchmarks/matcher_seeds.py --recipe recipes/grgan.yaml --seeds 0 1 2 3 4 \
        --json benchmarks/results/cpu-2026-12-01/matcher_seeds_native.json

Pretrains the recipe's matcher exactly as ``t2i-stages run`` does (its own settings, datasets
and resolved precision), once per seed, into a private cache (nothing is reused), and records
R-precision (1 true caption among 100 on the held-out split), the steps reached, the training
seconds and what ``precision: auto`` chose. Run it again with ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`` to stand in for an AVX2-only CPU (issue 17).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import machine_info, summarize, write_json  # noqa: E402


def pretrain_seed(recipe_path: str, seed: int, overrides: list[str], cache: Path) -> dict:
    from t2i_stages.build import assemble
    from t2i_stages.plugins.matchers.pretrain import pretrain_matcher
    from t2i_stages.recipe import load_recipe, resolved_recipe
    from t2i_stages.registry import load_registry

    registry = load_registry()
    recipe = load_recipe(recipe_path, [f"seed={seed}", *overrides], registry)
    data = assemble(recipe, registry, parts=["generator", "data"])  # datasets at G's sizes
    train, test = data.train_data, data.test_data
    t0 = time.time()
    result = pretrain_matcher(
        recipe.matcher,
        train,
        test,
        registry=registry,
        dataset_key=resolved_recipe(recipe, registry)["data"]["dataset"],
        seed=seed,
        cache_root=cache,
        context=data.context,
        log=lambda *a: None,
    )
    import json

    config = json.loads((result.path / "config.json").read_text())
    return {
        "seed": seed,
        "r_precision": result.r_precision.mean,
        "r_precision_std": result.r_precision.std,
        "steps": result.steps,
        "target_steps": result.target_steps,
        "complete": result.complete,
        "train_seconds": result.seconds,
        "wall_seconds": time.time() - t0,
        "precision": config["precision"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/grgan.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="matcher-seeds-") as cache:
        for seed in args.seeds:
            row = pretrain_seed(args.recipe, seed, args.overrides, Path(cache))
            rows.append(row)
            print(
                f"seed {seed}: R-precision {row['r_precision']:.3f} after {row['steps']} of "
                f"{row['target_steps']} steps ({row['train_seconds']:.0f} s, "
                f"{row['precision']['chosen']})",
                flush=True,
            )
    stats = summarize(r["r_precision"] for r in rows)
    stats["min"] = min(r["r_precision"] for r in rows)
    stats["max"] = max(r["r_precision"] for r in rows)
    print(
        f"R-precision over {len(rows)} seeds: mean {stats['mean']:.3f}, min {stats['min']:.3f}, "
        f"max {stats['max']:.3f}"
    )
    if args.json:
        write_json(
            args.json,
            {
                "recipe": args.recipe,
                "overrides": args.overrides,
                "machine": machine_info(),
                "rows": rows,
                "summary": stats,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
