"""The four families (GR-GAN, DM-GAN, AttnGAN, DF-GAN) compared on the built-in shapes dataset.

    .venv/bin/python benchmarks/compare_families.py [--steps 1000] [--seeds 0 1 2]
        [--families grgan dmgan attngan dfgan] [--threads 2] [--eval-samples 2000]
        [--out runs/compare] [--write-docs]

Issue 11. Every family trains its demo recipe (recipes/<family>.yaml) for the same number of
generator steps (``train.max_steps``; ``train.max_minutes`` is set to null so only the steps bound
a run), once per seed (``seed``). The matcher each recipe trains against is pretrained first and
cached, as in any run; its time is reported apart from the GAN training. Each run is then scored
by one identical list of metrics (the recipe's ``eval.metrics`` is overridden for every family):

- ``attribute_accuracy``: the shapes oracle's accuracy on each attribute a caption mentions,
  ``attr_acc[all_mentioned]`` and ``attr_acc[shape+color+position]`` (n/a if the metric has no
  such key);
- ``fid`` with extractor ``oracle``: the Fréchet distance in the shapes oracle's feature space
  (``FD[oracle]``, the in-domain FD of docs/metrics.md);
- ``r_precision`` with encoder ``held_out``: one held-out matcher for every family (the config of
  ``--held-out-from``'s recipe, pretrained with ``--held-out-seed``, step-bound, cached);
- ``cmd`` in that same held-out space (CMD and ITDis comparable across families), and ``cmd`` with
  space ``matcher``: each run's own matcher (ITM for GR-GAN, DAMSM for the others), which is what
  the paper's protocol measures but is not comparable across families.

Each finished run writes ``<out>/results/<family>-seed<k>.json`` at once; a rerun skips runs whose
results exist (an interrupted benchmark resumes; a half-trained run folder is moved aside and
retrained). Then ``<out>/summary.json``, ``summary.md`` (mean ± std over seeds), a grid of samples
(the first seed's EMA generator, 8 held-out captions, the same noise for every family) and a bar
chart of the main metrics. ``--write-docs`` copies both figures to docs/img/ and rewrites the
section between ``<!-- compare_families:start -->`` and ``<!-- compare_families:end -->`` in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

SCRIPT = "compare_families.py"
SECTION = "compare_families"
FAMILIES = ("grgan", "dmgan", "attngan", "dfgan")
LABELS = {"grgan": "GR-GAN", "dmgan": "DM-GAN", "attngan": "AttnGAN", "dfgan": "DF-GAN"}
ATTR_ORDER = ("shape", "color", "size", "fine", "position", "count", "all_mentioned")
SCP = "attr_acc[shape+color+position]"
GRID_CAPTIONS = 8
GRID_NOISE_SEED = 2024
SAMPLES_PNG = "compare_families_samples.png"
METRICS_PNG = "compare_families_metrics.png"
# (key, label, higher is better) of the headline metrics, in table and chart order
MAIN = (
    ("FD[oracle]", "FD[oracle] ↓", False),
    ("R-precision[held_out]", "R-precision (held-out) ↑", True),
    ("CMD[held_out]", "CMD (held-out space) ↓", False),
    ("ITDis[held_out]", "ITDis (held-out space) ↓", False),
    ("CMD[matcher]", "CMD (own matcher) ↓", False),
    ("ITDis[matcher]", "ITDis (own matcher) ↓", False),
)
CHART = (
    ("attr_acc[all_mentioned]", "attr_acc[all_mentioned] ↑"),
    (SCP, "attr_acc[shape+color+position] ↑"),
    ("FD[oracle]", "FD[oracle] ↓"),
    ("R-precision[held_out]", "R-precision (held-out) ↑"),
    ("CMD[held_out]", "CMD (held-out space) ↓"),
    ("ITDis[held_out]", "ITDis (held-out space) ↓"),
)


# ---------------------------------------------------------------------------- configuration


def held_out_slot(family: str, seed: int, steps: int | None) -> dict[str, Any]:
    """The shared held-out matcher: ``family``'s matcher config, step-bound pretraining."""
    from t2i_stages.recipe.sources import read_recipe

    data = read_recipe(bc.REPO / "recipes" / f"{family}.yaml").data
    if not data.get("matcher"):
        raise SystemExit(f"error: recipes/{family}.yaml has no matcher to hold out")
    slot = json.loads(json.dumps(data["matcher"]))
    pre = dict(slot.setdefault("params", {}).get("pretrain") or {})
    pre["max_minutes"] = None  # the same encoder whatever the machine's load
    if steps is not None:
        pre["steps"] = steps
    slot["params"]["pretrain"] = pre
    return slot


def metric_list(held_out: dict[str, Any], held_out_seed: int) -> list[dict[str, Any]]:
    """The eval.metrics every family is scored with (identical for all)."""
    ho = {"held_out_seed": held_out_seed, "held_out_matcher": held_out}
    return [
        {"type": "attribute_accuracy"},
        {"type": "fid", "params": {"extractor": "oracle", "kid": False}},
        {"type": "r_precision", "params": {"encoder": "held_out", **ho}},
        {"type": "cmd", "params": {"space": "held_out", **ho}},
        {"type": "cmd", "params": {"space": "matcher"}},
    ]


def run_overrides(args: argparse.Namespace, seed: int, metrics: list[dict]) -> list[str]:
    """The ``--set`` items of one run, in the order ``t2i-stages run`` would apply them."""
    return [
        f"seed={seed}",
        f"train.max_steps={args.steps}",
        "train.max_minutes=null",
        f"train.threads={args.threads}",
        f"eval.num_samples={args.eval_samples}",
        "eval.metrics=" + json.dumps(metrics),
        *args.set,
    ]


def run_config(args: argparse.Namespace, family: str, seed: int, overrides: list[str]) -> dict:
    """What a stored result must match to be reused by a rerun."""
    return {"family": family, "seed": seed, "recipe": f"recipes/{family}.yaml", "set": overrides}


# ---------------------------------------------------------------------------- metrics


def flatten_results(results: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """metrics.json ``results`` -> {name: value} (CMD/ITDis named by their space) and errors."""
    out: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for key, res in results.items():
        if "error" in res:
            errors[key] = res["error"]
            continue
        kind = key.split("#")[0]
        values = res.get("values", {})
        if kind == "cmd":
            space = res.get("params", {}).get("space", "?")
            out[f"CMD[{space}]"] = values.get("CMD")
            out[f"ITDis[{space}]"] = values.get("ITDis")
            out[f"CMD_script[{space}]"] = values.get("CMD (script)")
            out[f"ITDis_script[{space}]"] = values.get("ITDis (script)")
        else:
            out.update(values)
    return out, errors


def encoder_hashes(results: dict[str, Any]) -> dict[str, str]:
    """SHA-256 of the held-out encoder each metric used (they must agree across runs)."""
    out = {}
    for key, res in results.items():
        proto = res.get("protocol", {}) if isinstance(res, dict) else {}
        params = res.get("params", {}) if isinstance(res, dict) else {}
        if key.startswith("r_precision"):
            out[key] = proto.get("encoder_weights_sha256", "")
        elif key.startswith("cmd") and params.get("space") == "held_out":
            out[key] = proto.get("weights_sha256", "")
    return out


def aggregate(records: list[dict[str, Any]], families: list[str]) -> dict[str, dict[str, Any]]:
    """Per family, per number: mean, std, median and n over the seeds' runs."""
    out: dict[str, dict[str, Any]] = {}
    for fam in families:
        runs = [r for r in records if r["family"] == fam]
        keys = sorted({k for r in runs for k in r["metrics"]})
        agg = {k: bc.summarize(r["metrics"].get(k) for r in runs) for k in keys}
        for t in ("setup_seconds", "train_seconds", "eval_seconds", "steps_per_second"):
            agg[t] = bc.summarize(r["timing"].get(t) for r in runs)
        agg["matcher_r_precision"] = bc.summarize(
            (r.get("matcher") or {}).get("r_precision") for r in runs
        )
        agg["seeds"] = sorted(r["seed"] for r in runs)
        out[fam] = agg
    return out


def attribute_keys(agg: dict[str, dict[str, Any]]) -> list[str]:
    """The attribute columns: every attribute any run reports, all_mentioned, shape+color+position."""
    seen = {k for fam in agg.values() for k in fam if k.startswith("attr_acc[")}
    keys = [f"attr_acc[{a}]" for a in ATTR_ORDER if f"attr_acc[{a}]" in seen]
    keys += sorted(seen - set(keys) - {SCP})
    return [*keys, SCP]


def tables(agg: dict[str, dict[str, Any]], families: list[str]) -> str:
    """The three Markdown tables: attribute accuracy, distances, cost."""
    attr = attribute_keys(agg)
    rows = [
        [LABELS.get(f, f), *(bc.fmt_mean_std(agg[f].get(k, {})) for k in attr)] for f in families
    ]
    t1 = bc.markdown_table(["family", *(k[len("attr_acc[") : -1] for k in attr)], rows)
    rows = [
        [LABELS.get(f, f), *(bc.fmt_mean_std(agg[f].get(k, {})) for k, _, _ in MAIN)]
        for f in families
    ]
    t2 = bc.markdown_table(["family", *(label for _, label, _ in MAIN)], rows)
    cost = ("setup_seconds", "train_seconds", "steps_per_second", "eval_seconds")
    rows = [
        [
            LABELS.get(f, f),
            ", ".join(map(str, agg[f]["seeds"])),
            *(bc.fmt_mean_std(agg[f][k]) for k in cost),
            bc.fmt_mean_std(agg[f]["matcher_r_precision"]),
        ]
        for f in families
    ]
    t3 = bc.markdown_table(
        [
            "family",
            "seeds",
            "setup s (data, matcher)",
            "GAN training s",
            "G steps/s",
            "eval s",
            "own matcher R-precision",
        ],
        rows,
    )
    return "\n\n".join(
        [
            "Attribute accuracy (shapes oracle; n/a where no caption mentions the attribute or "
            "the metric gives no such number):",
            t1,
            "Distances and retrieval (↓ lower is better, ↑ higher):",
            t2,
            "Cost per run:",
            t3,
        ]
    )


# ---------------------------------------------------------------------------- one run


def run_one(
    family: str, seed: int, args: argparse.Namespace, registry: Any, overrides: list[str]
) -> dict[str, Any] | None:
    """Train and evaluate one (family, seed); None if a signal stopped the training."""
    import torch

    from t2i_stages.recipe import load_recipe
    from t2i_stages.training import train

    recipe = load_recipe(bc.REPO / "recipes" / f"{family}.yaml", overrides, registry)
    run_dir = args.out / "runs" / f"{family}-seed{seed}"
    if run_dir.exists():  # a run interrupted before its results were written: start it over
        n = 1
        while run_dir.with_name(f"{run_dir.name}.incomplete-{n}").exists():
            n += 1
        aside = run_dir.with_name(f"{run_dir.name}.incomplete-{n}")
        run_dir.rename(aside)
        print(f"[{family} seed {seed}] moved the unfinished run folder to {aside}")
    print(f"[{family} seed {seed}] training {args.steps} generator steps in {run_dir}")
    start_load = bc.machine_info()["load_average_1_5_15"]
    title = f"{recipe.name} seed {seed}: compare_families run"
    summary = train(recipe, registry, run_dir, device=args.device, title=title)
    if summary.get("signal"):
        print(f"[{family} seed {seed}] stopped by {summary['signal']}; no result written")
        return None
    trainer, report = summary["trainer"], summary["metrics"]
    setup_s, eval_s = summary["setup_seconds"], summary["eval_seconds"]
    metrics, errors = flatten_results(report["results"])
    for key, err in errors.items():
        print(f"[{family} seed {seed}] warning: metric '{key}' failed: {err}")
    train_s = float(summary["seconds"])
    record = {
        "family": family,
        "seed": seed,
        "run_dir": str(run_dir),
        "step": int(summary["step"]),
        "skipped_nonfinite": summary.get("skipped_nonfinite", 0),
        "metrics": metrics,
        "errors": errors,
        "matcher": trainer.assembly.matcher_report,
        "held_out_encoder_sha256": encoder_hashes(report["results"]),
        "timing": {
            "setup_seconds": setup_s,
            "train_seconds": train_s,
            "eval_seconds": eval_s,
            "steps_per_second": summary["step"] / train_s if train_s > 0 else None,
            "load_average_before": start_load,
            "load_average_after": bc.machine_info()["load_average_1_5_15"],
        },
        "results": report["results"],
        "protocol": report.get("protocol", {}),
    }
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return record


def warm_up(args: argparse.Namespace, registry: Any, overrides: list[str]) -> dict[str, Any]:
    """Pretrain (or load) the shared held-out matcher and the oracle before any timed run.

    Otherwise the first run's evaluation time would include both. The held-out matcher goes
    through the metric's own code path (same cache key as the evaluation will use).
    """
    import torch

    from t2i_stages.build import assemble
    from t2i_stages.evaluation.context import EvalContext
    from t2i_stages.plugins.datasets.shapes.oracle import load_oracle
    from t2i_stages.plugins.metrics.common import held_out_matcher
    from t2i_stages.recipe import load_recipe

    recipe = load_recipe(bc.REPO / "recipes" / f"{args.families[0]}.yaml", overrides, registry)
    slot = next(s for s in recipe.eval.metrics if s.type == "r_precision").resolved
    t0 = time.perf_counter()
    data = assemble(recipe, registry, parts=["data"])  # the datasets at their default sizes
    train, test = data.train_data, data.test_data
    data_s = time.perf_counter() - t0
    ctx = EvalContext(
        registry=registry,
        device=torch.device(args.device),
        test_data=test,
        vocab=getattr(train, "vocab", None),
        train_data_fn=lambda: train,
    )
    t0 = time.perf_counter()
    matcher = held_out_matcher(ctx, slot.held_out_seed, slot.held_out_matcher)
    held_s = time.perf_counter() - t0
    from t2i_stages.evaluation.extractors import state_sha256

    t0 = time.perf_counter()
    res = max(getattr(test, "resolutions", None) or [32])
    load_oracle(test, resolution=res)
    oracle_s = time.perf_counter() - t0
    return {
        "dataset_seconds": data_s,
        "held_out_seconds": held_s,
        "oracle_seconds": oracle_s,
        "held_out_sha256": state_sha256(matcher),
        "held_out_type": slot.held_out_matcher.type,
        "held_out_steps": slot.held_out_matcher.resolved.pretrain.steps,
    }


def runs_made(records: list[dict[str, Any]]) -> str:
    """When the runs behind the summary were made (a resumed benchmark spans several sessions)."""
    dates = sorted({(r.get("machine") or {}).get("date_utc", "") for r in records} - {""})
    if not dates:
        return "at an unknown date"
    return f"on {dates[0]}" if len(dates) == 1 else f"between {dates[0]} and {dates[-1]}"


# ---------------------------------------------------------------------------- figures


def sample_rows(
    families: list[str],
    run_dirs: dict[str, Path],
    registry: Any,
    n: int = GRID_CAPTIONS,
    stages: bool = False,
) -> tuple[list[str], list[tuple[str, Any]]]:
    """The same n held-out captions and noise through each family's EMA generator.

    ``stages``: one row per stage of each run (the coarse ones enlarged, nearest neighbour), to
    see at which resolution an artefact is made; else the last stage only.
    """
    import torch
    import torch.nn.functional as F

    from t2i_stages.api import load_run

    first = load_run(run_dirs[families[0]], registry=registry)
    test = registry.build("dataset", first.recipe.data.dataset, split="test")
    if hasattr(test, "set_epoch"):
        test.set_epoch(0)  # the captions the evaluation uses
    idx = [i * len(test) // n for i in range(n)]
    items = [test[i] for i in idx]
    captions = [it["caption"] for it in items]
    real = torch.stack(
        [
            it["images"][-1] if isinstance(it["images"], list | tuple) else it["images"]
            for it in items
        ]
    )
    rows: list[tuple[str, Any]] = [("real (test image)", real)]
    for fam in families:
        run = first if fam == families[0] else load_run(run_dirs[fam], registry=registry)
        G = run.generator
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(GRID_NOISE_SEED))
        eps = None
        if G.eps_dim:
            g = torch.Generator().manual_seed(GRID_NOISE_SEED + 1)
            eps = torch.randn(n, G.eps_dim, generator=g)
        out = run.generate(captions, z=z, eps=eps)
        label = f"{LABELS.get(fam, fam)} (step {run.step})"
        if not stages:
            rows.append((label, out.images[-1].float().cpu()))
            continue
        size = out.images[-1].shape[-1]
        for im in out.images:
            big = F.interpolate(im.float().cpu(), size=size, mode="nearest")
            rows.append((f"{label}, {im.shape[-1]} px", big))
    return captions, rows


def draw_grid(captions: list[str], rows: list[tuple[str, Any]], cell: int = 96) -> Any:
    """One row per family with its label, one column per caption printed above it."""
    import textwrap

    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    label_w, head_h, pad = 120, 72, 4
    cols = len(captions)
    W = label_w + cols * (cell + pad)
    H = head_h + len(rows) * (cell + pad)
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for c, cap in enumerate(captions):
        x = label_w + c * (cell + pad)
        for j, line in enumerate(textwrap.wrap(cap, width=cell // 6)[:5]):
            draw.text((x + 2, 2 + j * 13), line, fill="black", font=font)
    for r, (label, images) in enumerate(rows):
        y = head_h + r * (cell + pad)
        for j, line in enumerate(textwrap.wrap(label, width=label_w // 6)[:4]):
            draw.text((4, y + cell // 2 - 14 + j * 13), line, fill="black", font=font)
        arr = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for c in range(min(cols, len(arr))):
            tile = Image.fromarray(np.ascontiguousarray(arr[c])).resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (label_w + c * (cell + pad), y))
    return canvas


def metrics_chart(agg: dict[str, dict[str, Any]], families: list[str], path: Path) -> Path:
    """Bars of the main metrics per family, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, t) for k, t in CHART if any(agg[f].get(k, {}).get("mean") for f in families)]
    cols = 3
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    names = [LABELS.get(f, f) for f in families]
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        means = [agg[f].get(key, {}).get("mean") for f in families]
        stds = [agg[f].get(key, {}).get("std") or 0.0 for f in families]
        heights = [m if m is not None else 0.0 for m in means]
        ax.bar(names, heights, yerr=stds, capsize=4, color=colors[: len(families)])
        for i, m in enumerate(means):
            if m is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    n = max((len(agg[f]["seeds"]) for f in families), default=0)
    spread = f"mean ± std over {n} seeds" if n > 1 else "one seed (no error bars)"
    fig.suptitle(f"Shapes demo recipes, equal generator steps; {spread}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- docs


def docs_section(
    summary: dict[str, Any], argv: list[str], finding: str | None, img_prefix: str
) -> str:
    """The Markdown of the docs/benchmarks.md section, every number from ``summary``."""
    a = summary["args"]
    fams = a["families"]
    hashes = summary["held_out_encoder_sha256"]
    same = len(hashes) == 1
    warm = summary["warm_up"]
    lines = [
        "## The four families on the shapes dataset (issue 11)",
        "",
        f"Recipes {', '.join(f'`recipes/{f}.yaml`' for f in fams)} (the demo scale: 8/16/32 px, "
        f"batch 32, bf16 autocast), each trained for the same budget of **{a['steps']} generator "
        f"steps** (`train.max_steps`, with `train.max_minutes` null so the clock never ends a "
        f"run), seeds {', '.join(map(str, a['seeds']))}; evaluated on the first "
        f"{a['eval_samples']} test (held-out) captions with the EMA generator and noise seed 100. "
        "Every family gets the same `eval.metrics`. Numbers are mean ± sample std over the seeds "
        "(the mean alone for one seed); per-run numbers and medians are in "
        f"`{a['out']}/results/` and `summary.json`.",
        "",
        "The claim to test: the GR-GAN paper (ICME 2022) reports, on MS-COCO, GR-GAN ≥ DM-GAN ≥ "
        "AttnGAN on CMD and FID (lower is better for both). Here the FID's analogue is "
        "`FD[oracle]` and CMD is measured in the shared held-out space (below).",
        "",
        "**Feature spaces.** `FD[oracle]` is the Fréchet distance in the shapes oracle's feature "
        "space (the in-domain FD; not FID). The families train against different matchers (ITM "
        "for GR-GAN, DAMSM for AttnGAN and DM-GAN, DF-GAN's own DAMSM text encoder), so CMD and "
        "ITDis in *the run's own matcher* space (the paper's protocol) are not comparable across "
        "families. R-precision, CMD and ITDis are therefore also measured in **one shared space**: "
        f"a held-out {warm['held_out_type'].upper()} (the matcher config of "
        f"`recipes/{a['held_out_from']}.yaml`, pretrained with seed {a['held_out_seed']}, "
        f"{warm['held_out_steps']} steps, no time cap), which no generator trained against. Those columns are the "
        "apples-to-apples comparison. "
        + (
            f"All runs used the same held-out weights (SHA-256 `{next(iter(hashes))[:16]}…`)."
            if same
            else "WARNING: the runs used different held-out weights "
            f"({', '.join(h[:12] for h in sorted(hashes))}); the shared columns are not comparable."
        ),
        "",
        tables(summary["aggregate"], fams),
        "",
        "CMD and ITDis are the paper forms (with |·|); the released script's forms are in the "
        "per-run JSON. Setup is building the datasets and pretraining (or loading from the cache) "
        "the run's matcher, whose own pretraining R-precision is the last column; GAN training is "
        "`Trainer.fit` wall time including the sample grids and checkpoints it writes every "
        "250/500 steps. Before the runs, the shared held-out matcher took "
        f"{warm['held_out_seconds']:.0f} s and the oracle {warm['oracle_seconds']:.0f} s "
        "(pretraining or cache load).",
        "",
        f"![samples]({img_prefix}{SAMPLES_PNG})",
        "",
        f"The seed-{summary['grid_seed']} model of each family (EMA generator, newest checkpoint) "
        f"on {GRID_CAPTIONS} test captions spread over the test split, the same noise (seed "
        f"{GRID_NOISE_SEED}) in every row; the top row is the real test image.",
        "",
        f"![metrics]({img_prefix}{METRICS_PNG})",
        "",
        bc.machine_line(summary["machine"]) + f" Runs made {summary['runs_made']}.",
        "",
        f"Rerun: `{bc.command_line(SCRIPT, argv)}` (runs whose results exist in `{a['out']}` "
        "are reused; use a new `--out` or delete it for fresh numbers). Matcher pretraining in "
        "the demo recipes is capped at a few minutes, so its result depends on the machine's "
        "load when the cache is filled: use a fresh `T2I_STAGES_HOME` on a quiet machine.",
        "",
        finding or bc.FINDING_PLACEHOLDER,
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--steps", type=int, default=1000, help="generator steps per run (1000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (0 1 2)")
    p.add_argument(
        "--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, help="families to run"
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (train.threads; 2)")
    p.add_argument(
        "--eval-samples", type=int, default=2000, help="held-out captions evaluated (2000)"
    )
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="output folder")
    p.add_argument(
        "--held-out-from",
        default="dmgan",
        choices=FAMILIES,
        help="family whose matcher config gives the shared held-out encoder (dmgan: DAMSM)",
    )
    p.add_argument(
        "--held-out-seed", type=int, default=1000, help="its pretraining seed (not a run seed)"
    )
    p.add_argument(
        "--held-out-steps",
        type=int,
        default=None,
        help="its pretraining steps (default: the recipe's); always step-bound, no time cap",
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra recipe override for every run (repeatable), as t2i-stages run --set",
    )
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument(
        "--docs", type=Path, default=bc.DOCS, help="the Markdown file --write-docs updates"
    )
    args = p.parse_args(argv)
    if args.held_out_seed in args.seeds:
        p.error(
            f"--held-out-seed {args.held_out_seed} is also a run seed: that run's own matcher "
            "would be the 'held-out' one"
        )
    if args.steps < 1 or args.eval_samples < 2 or args.threads < 1:
        p.error("--steps and --threads must be at least 1, --eval-samples at least 2")
    args.families = list(dict.fromkeys(args.families))
    args.seeds = list(dict.fromkeys(args.seeds))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    import torch

    from t2i_stages import load_registry
    from t2i_stages.errors import T2IError
    from t2i_stages.recipe import load_recipe

    torch.set_num_threads(args.threads)
    machine = bc.machine_info()
    registry = load_registry()
    held = held_out_slot(args.held_out_from, args.held_out_seed, args.held_out_steps)
    metrics = metric_list(held, args.held_out_seed)
    plan = []
    try:  # validate every run's recipe before anything trains
        for fam in args.families:
            for seed in args.seeds:
                ov = run_overrides(args, seed, metrics)
                load_recipe(bc.REPO / "recipes" / f"{fam}.yaml", ov, registry)
                plan.append((fam, seed, ov))
    except T2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results_dir = args.out / "results"
    todo = []
    records: list[dict[str, Any]] = []
    for fam, seed, ov in plan:
        path = results_dir / f"{fam}-seed{seed}.json"
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
            if rec.get("config") != run_config(args, fam, seed, ov):
                print(
                    f"error: {path} was made with other settings; use another --out or delete it",
                    file=sys.stderr,
                )
                return 2
            print(f"[{fam} seed {seed}] results exist ({path}); skipped")
            records.append(rec)
        else:
            todo.append((fam, seed, ov))
    summary_path = args.out / "summary.json"
    old = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    warm = old.get("warm_up")
    if todo or warm is None:
        print("warm-up: the shared held-out matcher and the shapes oracle")
        warm = warm_up(args, registry, plan[0][2])
    for fam, seed, ov in todo:
        rec = run_one(fam, seed, args, registry, ov)
        if rec is None:
            return 130
        rec["config"] = run_config(args, fam, seed, ov)
        rec["machine"] = bc.machine_info()
        bc.write_json(results_dir / f"{fam}-seed{seed}.json", rec)
        records.append(rec)
        m = rec["metrics"]
        print(
            f"[{fam} seed {seed}] done: train {rec['timing']['train_seconds']:.0f} s, eval "
            f"{rec['timing']['eval_seconds']:.0f} s; all_mentioned "
            f"{bc.fmt_num(m.get('attr_acc[all_mentioned]'))}, FD[oracle] "
            f"{bc.fmt_num(m.get('FD[oracle]'))}, CMD[held_out] {bc.fmt_num(m.get('CMD[held_out]'))}"
        )
    agg = aggregate(records, args.families)
    hashes = {h for r in records for h in r.get("held_out_encoder_sha256", {}).values() if h}
    grid_seed = args.seeds[0]
    summary = {
        "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "docs"
        },
        "command": bc.command_line(SCRIPT, argv),
        "machine": machine,
        "warm_up": warm,
        "held_out_encoder_sha256": sorted(hashes),
        "grid_seed": grid_seed,
        "runs_made": runs_made(records),
        "aggregate": agg,
        "runs": [
            {k: r[k] for k in ("family", "seed", "step", "metrics", "timing", "matcher")}
            for r in records
        ],
    }
    bc.write_json(summary_path, summary)
    md = tables(agg, args.families)
    (args.out / "summary.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    if len(hashes) > 1:
        print("WARNING: the runs used different held-out encoder weights", file=sys.stderr)
    run_dirs = {
        f: Path(r["run_dir"]) for r in records for f in [r["family"]] if r["seed"] == grid_seed
    }
    grid_fams = [f for f in args.families if f in run_dirs]
    figs = []
    if grid_fams:
        captions, rows = sample_rows(grid_fams, run_dirs, registry)
        draw_grid(captions, rows).save(args.out / SAMPLES_PNG)
        figs.append(args.out / SAMPLES_PNG)
    figs.append(metrics_chart(agg, args.families, args.out / METRICS_PNG))
    print("figures: " + ", ".join(map(str, figs)))
    if args.write_docs:
        img_dir = args.docs.parent / "img"
        img_dir.mkdir(parents=True, exist_ok=True)
        for f in figs:
            shutil.copyfile(f, img_dir / f.name)
        text = args.docs.read_text(encoding="utf-8") if args.docs.is_file() else ""
        finding = bc.section_finding(text, SECTION)
        if finding:
            print("note: kept the existing 'Finding:' paragraph; check it against the new numbers")
        bc.write_docs_section(args.docs, SECTION, docs_section(summary, argv, finding, "img/"))
        print(f"updated {args.docs} (section '{SECTION}') and {img_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
