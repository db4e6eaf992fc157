"""Digests of a trained run's weights: the "same behaviour" check of a refactor (issue 18).

    .venv/bin/python benchmarks/weights_digest.py \
        --json benchmarks/results/redesign-reference/grgan-200.json

Trains ``recipes/grgan.yaml`` for 200 steps at seed 0 (fp32, 2 threads, no evaluation; the
matcher's pretraining shortened to 300 steps so that the check takes minutes) into a private
``$T2I_STAGES_HOME`` (nothing cached is reused), then records the SHA-256 of every safetensors
file of the last checkpoint, the matcher's cached weights and the recipe. Run it before and after
a change on the same CPU kind (and torch) and compare the files: equal digests mean the same
weights to the bit. ``--compare OLD.json`` does the comparison and exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import machine_info, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = [
    "train.max_steps=200",
    "train.max_minutes=null",
    "train.precision=fp32",
    "train.threads=2",
    "seed=0",
    "train.ckpt_every=200",
    "train.sample_every=1000",
    "matcher.params.pretrain.steps=300",
    "matcher.params.pretrain.precision=fp32",
    # no time cap: on a loaded machine the 5-minute default stopped pretraining short of its
    # steps and the weights differed; the references ran all 300 steps, so the weights agree
    "matcher.params.pretrain.max_minutes=null",
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(recipe_path: Path, overrides: list[str], workdir: Path) -> dict:
    """Train the recipe in ``workdir`` and return the digests of what it wrote."""
    os.environ["T2I_STAGES_HOME"] = str(workdir / "home")
    os.environ.pop("T2I_STAGES_THREADS", None)
    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry
    from t2i_stages.training import train

    registry = load_registry()
    recipe = load_recipe(recipe_path, overrides, registry)
    out = workdir / "run"
    summary = train(recipe, registry, out, evaluate=False, device="cpu")
    step_dir = max((out / "checkpoints").glob("step_*"))
    files = {p.name: _sha256(p) for p in sorted(step_dir.glob("*.safetensors"))}
    cached = [p for p in sorted((workdir / "home").rglob("*.safetensors")) if "matchers" in p.parts]
    # by file name: a new cache key with the same weights is the same behaviour
    matcher = {p.name: _sha256(p) for p in cached}
    return {
        "recipe": str(recipe_path.relative_to(ROOT)),
        "overrides": overrides,
        "step": summary["step"],
        "checkpoint": step_dir.name,
        "weights": files,
        "matcher_cache": matcher,
        "matcher_cache_keys": [p.parent.name for p in cached],
    }


def compare(old: dict, new: dict) -> list[str]:
    """The names whose digests differ (or exist on one side only)."""
    diffs = []
    for group in ("weights", "matcher_cache"):
        a, b = old.get(group, {}), new.get(group, {})
        diffs += [f"{group}/{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "grgan.yaml")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="more overrides")
    ap.add_argument("--json", type=Path, help="write the digests here")
    ap.add_argument("--compare", type=Path, help="an earlier digest file to compare against")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="t2i-digest-") as tmp:
        result = digests(args.recipe.resolve(), OVERRIDES + args.extra, Path(tmp))
    result["machine"] = machine_info()
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(json.dumps({k: result[k] for k in ("step", "weights", "matcher_cache")}, indent=2))
    if args.json:
        write_json(args.json, result)
    if args.compare:
        diffs = compare(json.loads(args.compare.read_text()), result)
        print("same weights" if not diffs else "DIFFERENT: " + ", ".join(diffs))
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
