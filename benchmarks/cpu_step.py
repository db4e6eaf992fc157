"""CPU training step: plain fp32 against each speed switch and all of them, interleaved (issue 22).

    python benchmarks/cpu_step.py [--recipes recipes/coco/dmgan.yaml recipes/coco/grgan.yaml]
                                  [--batches 2 4] [--threads 2] [--reps 5] [--warmup N]
                                  [--switches channels_last compile ...] [--json out.json]

For each recipe and batch, one Trainer per configuration is built in this one process: the plain
fp32 step (today's defaults), each switch alone, and all the chosen switches together. Then the
steps are timed in rounds, one step of every configuration per round (A B C ... A B C ...,
the order rotated each round), so that the machine's load drifts over all of them alike. The
table gives each configuration's median seconds per step and its speed-up over plain: the
median over the rounds of (plain's step / its step in the same round).

Switches: ``bf16`` (train.precision bf16, only where the CPU runs it natively: AVX512-BF16 or
AMX, ``t2i_stages.hardware``; emulated bf16 is many times slower), ``channels_last``,
``compile`` (torch.compile of G and the Ds; the first steps compile, inside the warm-up),
``text_cache`` (train.text_cache), ``merge_d_optimizers``, ``sdpa`` (the attention fusion blocks'
fused attention) and ``batched_power_iteration`` (the spectral-norm Ds).

The COCO recipes keep their models and losses and train on the built-in shapes data at their
resolutions, with random weights in place of the pretrained CLIP / RN101 / Inception files
(``stand_in_assets.py``; speed does not depend on the weights) and no matcher pretraining. The
train split is ``--epoch-batches`` batches of one caption per image, without word subsampling,
and the warm-up runs at least one epoch, so the timed steps show the text cache's steady state
(every caption seen; in a real run, from the second epoch on); its hit rate over the timed
steps is reported.

The machine this was written on is shared with other jobs: it was only run with tiny settings
(the demo recipe, 2 rounds) to check that it works, not for figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench_common as bc  # noqa: E402

REPO = bc.REPO
COCO = ["recipes/coco/dmgan.yaml", "recipes/coco/grgan.yaml"]
SWITCHES = (
    "bf16",
    "channels_last",
    "compile",
    "text_cache",
    "merge_d_optimizers",
    "sdpa",
    "batched_power_iteration",
)
ATTENTION_FUSIONS = ("word_attention", "dynamic_memory")


# ---------------------------------------------------------------------------- pure helpers


def switch_overrides(switch: str, recipe: dict[str, Any]) -> list[str]:
    """The ``--set`` overrides that turn ``switch`` on for ``recipe`` (its YAML data, extends
    merged); an empty list where the recipe has nothing the switch acts on."""
    if switch == "bf16":
        return ["train.precision=bf16"]
    if switch in ("channels_last", "compile", "text_cache", "merge_d_optimizers"):
        return [f"train.{switch}=true"]
    if switch == "sdpa":
        stages = recipe.get("generator", {}).get("params", {}).get("stages", [])
        return [
            f"generator.params.stages.{i}.params.fusion.params.sdpa=true"
            for i, st in enumerate(stages)
            if ((st.get("params") or {}).get("fusion") or {}).get("type") in ATTENTION_FUSIONS
        ]
    if switch == "batched_power_iteration":
        return [
            f"discriminators.{i}.params.batched_power_iteration=true"
            for i, d in enumerate(recipe.get("discriminators", []))
            if d.get("type") == "stagewise" and (d.get("params") or {}).get("norm") == "spectral"
        ]
    raise ValueError(f"unknown switch {switch!r}; choose from {', '.join(SWITCHES)}")


def configurations(
    switches: Sequence[str], recipe: dict[str, Any], bf16_native: bool
) -> list[tuple[str, list[str]]]:
    """(name, overrides): plain, each switch that acts on the recipe, and all of them together.
    bf16 joins only where the CPU runs it natively."""
    usable = [s for s in switches if s != "bf16" or bf16_native]
    out: list[tuple[str, list[str]]] = [("plain", [])]
    together: list[str] = []
    for s in usable:
        ov = switch_overrides(s, recipe)
        if ov:
            out.append((s, ov))
            together += ov
    if len(out) > 2:
        out.append(("all", together))
    return out


def round_order(names: Sequence[str], r: int) -> list[str]:
    """Round ``r``'s order: the configurations rotated by ``r``, so none always goes first."""
    k = r % len(names) if names else 0
    return [*names[k:], *names[:k]]


def summarize(times: dict[str, list[float | None]], baseline: str = "plain") -> dict[str, dict]:
    """Per configuration: median s/step and the median over rounds of baseline/its step (rounds
    where either is missing are left out)."""
    base = times.get(baseline, [])
    out = {}
    for name, ts in times.items():
        valid = [t for t in ts if t is not None]
        ratios = [b / t for b, t in zip(base, ts, strict=False) if b is not None and t]
        out[name] = {
            "s_per_step": statistics.median(valid) if valid else None,
            "speedup": statistics.median(ratios) if ratios else None,
            "rounds": len(valid),
        }
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per recipe, batch and configuration."""
    cells = []
    for r in rows:
        if r.get("error"):
            cells.append(
                [r["recipe"], str(r["batch"]), r["config"], "error: " + r["error"], "", ""]
            )
            continue
        hit = r.get("text_cache_hit_rate")
        cells.append(
            [
                r["recipe"],
                str(r["batch"]),
                r["config"],
                bc.fmt_num(r["s_per_step"]),
                f"{r['speedup']:.2f}x" if r.get("speedup") else "n/a",
                f"{100 * hit:.0f}%" if hit is not None else "",
            ]
        )
    head = ["recipe", "batch", "configuration", "s / step (median)", "vs plain", "cache hits"]
    return bc.markdown_table(head, cells)


# ---------------------------------------------------------------------------- measuring


def data_overrides(recipe_path: Path, batch: int, epoch_batches: int) -> list[str]:
    """Shapes data at the recipe's resolutions: ``epoch_batches`` batches of one caption per
    image, no word subsampling; no matcher pretraining, no loader workers."""
    from t2i_stages.recipe import read_recipe

    data = read_recipe(recipe_path, []).data
    out: list[str] = []
    if "recipes/coco/" in str(recipe_path):
        from train_step import paper_overrides

        out += paper_overrides(recipe_path, batch)
    elif data.get("matcher"):
        out += ["matcher.params.pretrain.steps=0", "matcher.params.pretrain.eval_samples=100"]
    params = {
        "train_size": batch * epoch_batches,
        "test_size": max(16, batch),
        "min_captions": 1,
        "max_captions": 1,
        "word_subsample": False,
    }
    out += [f"data.dataset.params.{k}={json.dumps(v)}" for k, v in params.items()]
    out += [f"data.batch_size={batch}", "data.num_workers=0"]
    return out


def bf16_is_native() -> bool:
    import torch

    from t2i_stages.hardware import resolve_precision

    return resolve_precision("auto", torch.device("cpu")).chosen == "bf16"


def build(recipe_path: Path, overrides: list[str], reg: Any, root: Path) -> Any:
    from t2i_stages.recipe import load_recipe
    from t2i_stages.training import Trainer, prepare_run_folder
    from t2i_stages.training.runtime import Runtime

    recipe = load_recipe(recipe_path, overrides, reg)
    out = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    prepare_run_folder(recipe, reg, out, resume=False, log=lambda *a, **k: None)
    rt = Runtime.create("cpu", recipe.train.precision)
    t = Trainer(recipe, reg, out, rt, log=lambda *a, **k: None)
    t.batch_iter = t.batches()
    return t


def one_step(t: Any) -> float:
    """One training step of ``t`` (its batch fetched before the clock starts); seconds."""
    group = [t.to_device(next(t.batch_iter)) for _ in range(t.cfg.grad_accum)]
    start = time.perf_counter()
    t.train_step(group)
    seconds = time.perf_counter() - start
    t.step += 1
    return seconds


def measure(
    recipe: str, batch: int, args: argparse.Namespace, reg: Any, root: Path
) -> list[dict[str, Any]]:
    """Build every configuration of one recipe and batch, warm up, time interleaved rounds."""
    from t2i_stages.recipe import read_recipe

    path = REPO / recipe if not Path(recipe).is_absolute() else Path(recipe)
    base = data_overrides(path, batch, args.epoch_batches)
    base += [f"train.threads={args.threads}", "train.precision=fp32", "train.max_minutes=null"]
    data = read_recipe(path, base).data
    configs = configurations(args.switches, data, bf16_is_native())
    trainers: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, ov in configs:
        rows[name] = {"recipe": recipe, "batch": batch, "config": name, "overrides": ov}
        try:
            t = build(path, base + ov, reg, root)
            start = time.perf_counter()
            for _ in range(max(args.warmup, args.epoch_batches)):  # a whole epoch: cache full
                one_step(t)
            rows[name]["warmup_s"] = time.perf_counter() - start
            trainers[name] = t
        except Exception as exc:  # noqa: BLE001 - one failed configuration must not end the run
            rows[name]["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        print(json.dumps({k: v for k, v in rows[name].items() if k != "overrides"}), flush=True)
    names = list(trainers)
    times: dict[str, list[float | None]] = {n: [] for n in names}
    caches = {n: t.gan.text_cache for n, t in trainers.items() if t.gan.text_cache is not None}
    before = {n: (c.hits, c.misses) for n, c in caches.items()}
    for r in range(args.reps):
        for name in round_order(names, r):
            try:
                times[name].append(one_step(trainers[name]))
            except Exception as exc:  # noqa: BLE001
                rows[name]["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                times[name].append(None)
        line = {n: round(ts[-1], 4) if ts[-1] else None for n, ts in times.items()}
        print(json.dumps({"recipe": recipe, "batch": batch, "round": r, "s": line}), flush=True)
    stats = summarize(times)
    for name in names:
        rows[name].update(stats[name], s_all=times[name])
        if name in caches:
            h0, m0 = before[name]
            hits, misses = caches[name].hits - h0, caches[name].misses - m0
            rows[name]["text_cache_hit_rate"] = hits / (hits + misses) if hits + misses else None
            rows[name]["text_cache"] = caches[name].stats()
    return list(rows.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=COCO)
    p.add_argument("--batches", nargs="+", type=int, default=[2, 4])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5, help="timed rounds (one step per config each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per configuration")
    p.add_argument(
        "--epoch-batches",
        type=int,
        default=4,
        help="batches per epoch of the train split (the warm-up runs at least one epoch)",
    )
    p.add_argument("--switches", nargs="+", choices=SWITCHES, default=list(SWITCHES))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    if any("recipes/coco/" in r for r in args.recipes) and "T2I_STAGES_HOME" not in os.environ:
        from stand_in_assets import make_stand_in_home

        home = Path(tempfile.gettempdir()) / "t2i-stages-bench-home"
        print(f"stand-in assets (random weights) in {home}", file=sys.stderr)
        os.environ["T2I_STAGES_HOME"] = str(make_stand_in_home(home))
    from t2i_stages.registry import load_registry

    reg = load_registry()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cpu-step-") as tmp:
        for recipe in args.recipes:
            for batch in args.batches:
                rows += measure(recipe, batch, args, reg, Path(tmp))
    info = bc.machine_info()
    command = bc.command_line("cpu_step.py", sys.argv[1:] if argv is None else argv)
    text = "\n\n".join(
        [
            bc.machine_line(info),
            f"bf16 native here: {bf16_is_native()}; {args.reps} interleaved rounds after a warm-up "
            f"of max({args.warmup}, {args.epoch_batches}) steps per configuration.",
            table(rows),
            f"Rerun: `{command}`",
        ]
    )
    print(text)
    if args.json:
        bc.write_json(args.json, {"machine": info, "command": command, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
