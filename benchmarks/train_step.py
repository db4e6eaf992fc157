"""Training-step benchmark: seconds per full iteration, images/s, peak memory and MFU.

    python benchmarks/train_step.py [--set demo|paper|all] [--device cpu|cuda] [--threads 2]
                                    [--batch N] [--precision bf16] [--channels-last] [--compile]
                                    [--finite-check deferred] [--flops] [--max-batch]
                                    [--json out.json] [--write-docs]

An iteration is what ``Trainer.train_step`` does: every discriminator's update, then the
generator's (with the matcher's losses), on batches from the engine's own data loader. Each
recipe runs in a fresh subprocess (clean peak-memory figures, no compile cache shared), builds
the real Trainer from the recipe, warms up, then times ``--steps`` iterations ``--repeats``
times; the median is reported. Time spent waiting for the next batch is reported apart.

The paper configurations (recipes/coco/*.yaml) keep their models and losses but train on the
built-in shapes data at their resolutions, with random weights standing in for the pretrained
CLIP / RN101 / Inception files (benchmarks/stand_in_assets.py): speed does not depend on the
weights. Their matcher pretraining is skipped (0 steps) for the same reason.

``--flops`` counts the FLOPs of one iteration with ``torch.utils.flop_counter`` (matmuls and
convolutions, forward and backward); the model FLOPs utilisation is those FLOPs per second over
the device's dense bf16 peak (``--peak-tflops``, known for H100/H200). ``--max-batch`` doubles
the batch until the device runs out of memory and reports the largest that fitted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_common import cpu_model  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- train_step:start -->", "<!-- train_step:end -->"
DEMO = ["recipes/grgan.yaml", "recipes/dmgan.yaml", "recipes/attngan.yaml", "recipes/dfgan.yaml"]
PAPER = ["recipes/coco/grgan.yaml", "recipes/coco/dmgan.yaml", "recipes/coco/attngan.yaml"]
# How each CPU kind is reproduced on this machine (environment of the child process).
CPU_KINDS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
# dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4}


def peak_tflops(device_name: str) -> float | None:
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):  # most specific name first
        if key in device_name:
            return PEAK_BF16_TFLOPS[key]
    return None


def paper_overrides(recipe_path: Path, batch: int | None) -> list[str]:
    """Swap a COCO recipe's data for shapes at its resolutions; skip matcher pretraining."""
    from t2i_stages.recipe import read_recipe

    data = read_recipe(recipe_path, []).data
    params = data["data"]["dataset"]["params"]
    shapes = {
        "train_size": max(1024, 2 * (batch or 0)),
        "test_size": 128,
        "resolutions": params["resolutions"],
        "max_words": params.get("max_words", 18),
        "word_subsample": params.get("word_subsample", True),
    }
    matcher = data.get("matcher") or {}
    if matcher.get("type") == "itm" and matcher.get("params", {}).get("path"):
        from t2i_stages.assets import resolve_path

        shapes["tokenizer"] = str(resolve_path(matcher["params"]["path"]))  # CLIP's tokenizer
    out = [
        "data.dataset=" + json.dumps({"type": "shapes", "params": shapes}),
        "matcher.params.pretrain.steps=0",
        "matcher.params.pretrain.eval_samples=100",
    ]
    if batch:
        out.append(f"data.batch_size={batch}")
    return out


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_one(args: argparse.Namespace) -> dict[str, Any]:
    """Build the recipe's Trainer and time its iterations (runs in the child process)."""
    import torch

    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry
    from t2i_stages.training import Trainer, prepare_run_folder
    from t2i_stages.training.runtime import Runtime

    torch.set_num_threads(args.threads)
    recipe_path = (REPO / args.recipe) if not Path(args.recipe).is_absolute() else args.recipe
    paper = "recipes/coco/" in str(recipe_path)
    overrides = paper_overrides(Path(recipe_path), args.batch) if paper else []
    if args.batch and not paper:
        overrides.append(f"data.batch_size={args.batch}")
    from t2i_stages.recipe import read_recipe

    has_matcher = bool(read_recipe(Path(recipe_path), []).data.get("matcher"))
    if not paper and not args.pretrain and has_matcher:  # speed does not depend on its weights
        overrides += ["matcher.params.pretrain.steps=0", "matcher.params.pretrain.eval_samples=100"]
    precision = args.precision or ("bf16" if args.device == "cuda" else None)
    train = {
        "threads": args.threads,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "finite_check": args.finite_check,
        "fused_optimizer": not args.no_fused,
        "max_minutes": None,
    }
    if precision:
        train["precision"] = precision
    overrides += [f"train.{k}={json.dumps(v)}" for k, v in train.items()]
    overrides.append(f"data.num_workers={args.workers}")
    reg = load_registry()
    recipe = load_recipe(Path(recipe_path), overrides, reg)
    out = Path(tempfile.mkdtemp(prefix="train-step-"))
    prepare_run_folder(recipe, reg, out, resume=False)
    quiet = lambda *a, **k: None  # noqa: E731
    t = Trainer(recipe, reg, out, Runtime.create(args.device, recipe.train.precision), log=quiet)
    dev = t.runtime.device
    batches = t.batches()
    batch = recipe.data.batch_size

    def iteration() -> float:
        t0 = time.perf_counter()
        group = [t.to_device(next(batches)) for _ in range(recipe.train.grad_accum)]
        waited = time.perf_counter() - t0
        t.G_train.train()
        for d in t.Ds_train:
            d.train()
        t.train_step(group)
        t.step += 1
        return waited

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(args.warmup):
        iteration()
    _sync(dev)
    times, waits = [], []
    for _ in range(args.repeats):
        w = 0.0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            w += iteration()
        _sync(dev)
        times.append((time.perf_counter() - t0) / args.steps)
        waits.append(w / args.steps)
    s_iter = statistics.median(times)
    result: dict[str, Any] = {
        "recipe": str(args.recipe),
        "name": recipe.name,
        "paper_config": paper,
        "batch": batch,
        "recipe_batch": None,
        "resolutions": list(t.G.resolutions),
        "precision": t.runtime.precision,
        "precision_requested": recipe.train.precision,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "channels_last": recipe.train.channels_last,
        "compile": recipe.train.compile,
        "finite_check": recipe.train.finite_check,
        "fused_optimizer": all(o.defaults.get("fused") for o in [t.opt_g, *t.opt_ds]),
        "s_per_iter": s_iter,
        "s_per_iter_all": times,
        "images_per_s": batch / s_iter,
        "data_wait_share": statistics.median(waits) / s_iter,
        "g_params": sum(p.numel() for p in t.G.parameters()),
        "d_params": [sum(p.numel() for p in d.parameters()) for d in t.Ds],
    }
    if paper:
        from t2i_stages.recipe import read_recipe

        result["recipe_batch"] = read_recipe(Path(recipe_path), []).data["data"]["batch_size"]
    if dev.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
        result["device"] = torch.cuda.get_device_name(dev)
    else:
        import resource

        result["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        result["device"] = f"CPU: {cpu_model()} ({os.cpu_count()} cores)"
    if args.count_syncs and dev.type == "cuda":
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            iteration()
            torch.cuda.set_sync_debug_mode("default")
        result["host_syncs_per_iter"] = sum("synchroniz" in str(w.message) for w in caught)
        result["host_sync_sites"] = sorted({f"{w.filename}:{w.lineno}" for w in caught})[:10]
    if args.flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        try:
            with counter:
                iteration()
            _sync(dev)
        except RuntimeError as exc:  # e.g. a gradient penalty's autograd.grad under the counter
            result["flops_error"] = str(exc).splitlines()[0][:200]
        else:
            flops = counter.get_total_flops()
            result["flops_per_iter"] = flops
            result["achieved_tflops"] = flops / s_iter / 1e12
            peak = args.peak_tflops or (
                peak_tflops(result["device"]) if dev.type == "cuda" else None
            )
            if peak:
                result["peak_tflops"] = peak
                result["mfu"] = result["achieved_tflops"] / peak
    return result


def child(
    args: argparse.Namespace, recipe: str, batch: int | None, kind: str = "native"
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; returns its JSON or an error record."""
    cmd = [sys.executable, __file__, "--child", "--recipe", recipe, *_pass_through(args)]
    if batch:
        cmd += ["--batch", str(batch)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), **CPU_KINDS[kind])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return {**json.loads(line[len("RESULT ") :]), "cpu_kind": kind}
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    oom = "out of memory" in proc.stderr.lower() or "OutOfMemoryError" in proc.stderr
    return {"recipe": recipe, "batch": batch, "error": tail[:300], "oom": oom}


def _pass_through(args: argparse.Namespace) -> list[str]:
    out = ["--device", args.device, "--threads", str(args.threads)]
    out += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    out += ["--repeats", str(args.repeats), "--workers", str(args.workers)]
    out += ["--finite-check", args.finite_check]
    if args.pretrain:
        out.append("--pretrain")
    if args.precision:
        out += ["--precision", args.precision]
    for flag in ("channels_last", "compile", "flops", "no_fused", "count_syncs"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    if args.peak_tflops:
        out += ["--peak-tflops", str(args.peak_tflops)]
    return out


def largest_batch(args: argparse.Namespace, recipe: str, start: int) -> dict[str, Any]:
    """Double the batch from ``start`` until a step runs out of memory; the last that fitted."""
    best, batch = None, start
    short = argparse.Namespace(**{**vars(args), "steps": 3, "repeats": 1, "warmup": 2})
    while batch <= args.max_batch_limit:
        r = child(short, recipe, batch)
        print(json.dumps({"batch_search": batch, **r}), flush=True)
        if "error" in r:
            if not r.get("oom"):
                r["note"] = "stopped the batch search: not an out-of-memory error"
                return best or r
            break
        best, batch = r, batch * 2
    if best is not None:
        best["largest_batch_search"] = f"doubling from {start}; {batch} did not fit"
    return best or {"recipe": recipe, "error": f"batch {start} did not fit"}


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"{meta['device']}; {meta['date']}; torch {meta['torch']}; {meta['threads']} torch "
        f"thread(s); medians of {meta['repeats']} x {meta['steps']} iterations after "
        f"{meta['warmup']} warm-up. Options: {meta['options']}.",
        "",
        "| recipe | CPU kind | batch | precision | s / iteration | images / s | data wait "
        "| peak memory GB | TFLOP / iter | achieved TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['recipe']} | {r.get('cpu_kind', '')} | {r.get('batch') or ''} | | "
                f"error: {r['error']} |"
            )
            continue
        batch = str(r["batch"])
        if r.get("recipe_batch") and r["recipe_batch"] != r["batch"]:
            batch += f" (recipe {r['recipe_batch']})"
        if r.get("largest_batch_search"):
            batch += " (largest)"
        flops = f"{r['flops_per_iter'] / 1e12:.3f}" if "flops_per_iter" in r else "–"
        ach = f"{r['achieved_tflops']:.2f}" if "achieved_tflops" in r else "–"
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "–"
        kind = {"native": "native", "avx2": "AVX2 (emulated)"}.get(r.get("cpu_kind", ""), "")
        lines.append(
            f"| {r['recipe']} | {kind} | {batch} | {r['precision']} | {r['s_per_iter']:.3f} | "
            f"{r['images_per_s']:.1f} | {100 * r['data_wait_share']:.0f}% | "
            f"{r['peak_memory_gb']:.2f} | {flops} | {ach} | {mfu} |"
        )
    return "\n".join(lines)


def write_docs(section: str, key: str) -> None:
    """Replace this device's block inside the train_step section of docs/benchmarks.md."""
    text = DOCS.read_text(encoding="utf-8")
    start_k, end_k = f"<!-- train_step:{key}:start -->", f"<!-- train_step:{key}:end -->"
    block = f"{start_k}\n{section}\n{end_k}"
    if START not in text:
        text = text.rstrip("\n") + f"\n\n## Training speed (issue 11)\n\n{START}\n{END}\n"
    if start_k in text:
        a, b = text.index(start_k), text.index(end_k) + len(end_k)
        text = text[:a] + block + text[b:]
    else:
        text = text.replace(END, f"{block}\n{END}")
    DOCS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", dest="which", choices=("demo", "paper", "all"), default="all")
    p.add_argument("--recipes", nargs="+", default=None, help="instead of --set")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="batch for every recipe")
    p.add_argument("--paper-batch", type=int, default=None, help="batch for the paper configs only")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None)
    p.add_argument(
        "--precisions",
        nargs="+",
        default=None,
        choices=("auto", "fp32", "bf16"),
        help="measure each recipe at each of these (instead of --precision)",
    )
    p.add_argument(
        "--cpu-kinds",
        nargs="+",
        default=None,
        choices=tuple(CPU_KINDS),
        help="measure on each CPU kind: native, and avx2 (ATEN_CPU_CAPABILITY=avx2 "
        "ONEDNN_MAX_CPU_ISA=AVX2 stand in for an AVX2-only CPU without native bf16)",
    )
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile G and the Ds")
    p.add_argument("--finite-check", choices=("step", "deferred"), default="step")
    p.add_argument("--no-fused", action="store_true", help="foreach optimizers instead")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument(
        "--pretrain",
        action="store_true",
        help="pretrain the demo recipes' matchers first (default: random matcher weights)",
    )
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--flops", action="store_true", help="count FLOPs per iteration (and MFU)")
    p.add_argument(
        "--count-syncs", action="store_true", help="CUDA: count host syncs in one iteration"
    )
    p.add_argument("--peak-tflops", type=float, default=None, help="device dense bf16 peak")
    p.add_argument("--max-batch", action="store_true", help="also find the largest batch")
    p.add_argument("--max-batch-limit", type=int, default=1024)
    p.add_argument("--max-batch-start", type=int, default=None, help="default: 2 x the batch")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per recipe")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--write-docs", action="store_true")
    p.add_argument("--docs-key", default=None, help="block name in the docs (default: device)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--recipe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(measure_one(args)), flush=True)
        return 0
    recipes = args.recipes or {"demo": DEMO, "paper": PAPER, "all": DEMO + PAPER}[args.which]
    if any("recipes/coco/" in r for r in recipes) and "T2I_STAGES_HOME" not in os.environ:
        sys.path.insert(0, str(Path(__file__).parent))
        from stand_in_assets import make_stand_in_home

        home = Path(tempfile.gettempdir()) / "t2i-stages-bench-home"
        print(f"stand-in assets (random weights) in {home}", file=sys.stderr)
        os.environ["T2I_STAGES_HOME"] = str(make_stand_in_home(home))
    rows = []
    kinds = args.cpu_kinds or ["native"]
    precisions = args.precisions or [args.precision]
    for recipe in recipes:
        batch = args.batch or (args.paper_batch if "recipes/coco/" in recipe else None)
        t0 = time.time()
        for kind in kinds:  # one after the other in this run, so the rows compare
            for prec in precisions:
                r = child(
                    argparse.Namespace(**{**vars(args), "precision": prec}), recipe, batch, kind
                )
                print(json.dumps(r), flush=True)
                rows.append(r)
        if args.max_batch and "error" not in r:
            big = largest_batch(args, recipe, args.max_batch_start or 2 * r["batch"])
            print(json.dumps(big), flush=True)
            if "error" not in big:
                rows.append(big)
        print(f"# {recipe}: {time.time() - t0:.0f} s", file=sys.stderr)
    import torch

    device = next((r["device"] for r in rows if "device" in r), args.device)
    shown = "/".join(p or "recipe" for p in precisions) if args.precisions else None
    opts = [
        f"precision {shown or args.precision or ('bf16' if args.device == 'cuda' else 'recipe')}"
    ]
    if args.cpu_kinds:
        opts.append("CPU kinds " + ", ".join(args.cpu_kinds))
    opts += ["channels-last"] * args.channels_last + ["torch.compile"] * args.compile
    opts.append("fused Adam" if not args.no_fused else "foreach Adam")
    opts.append(f"finite check {args.finite_check}")
    opts.append(f"{args.workers} loader workers")
    meta = {
        "device": device,
        "date": dt.date.today().isoformat(),
        "torch": torch.__version__,
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "options": ", ".join(opts),
        "command": "python benchmarks/train_step.py " + " ".join(argv or sys.argv[1:]),
    }
    md = to_markdown(rows, meta) + f"\n\nRerun: `{meta['command']}`"
    print(md)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    if args.write_docs:
        write_docs(md, args.docs_key or args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
