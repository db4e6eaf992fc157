"""Learning curve of the make-demo recipe: oracle accuracy and in-domain FD vs pure training time.

    .venv/bin/python benchmarks/demo_learning_curve.py [--minutes 30] [--every-minutes 2.5]
        [--eval-samples 2000] [--threads 2] [--seed 0] [--out runs/demo-curve] [--write-docs]

Issue 11. Trains ``recipes/grgan.yaml`` (what ``make demo`` runs) with ``train.max_minutes`` null
and ``train.max_steps`` too large to bind, for ``--minutes`` of *pure training time*: the clock
runs only while the trainer fetches a batch (data loading included) and takes a step, and stops
for every evaluation and for the final checkpoint. At step 0 and at every ``--every-minutes`` of
training time (the mark is checked after each step, so a point lies at most one step past its
mark) the EMA generator is scored on the first ``--eval-samples`` held-out (test) captions:

- ``attribute_accuracy``: each attribute the captions mention, ``all_mentioned`` and
  ``shape+color+position`` (n/a if the metric has no such key);
- ``fid`` with extractor ``oracle``: the Fréchet distance in the shapes oracle's feature space.

The global RNG state is saved before and restored after each evaluation, so evaluating does not
change the training trajectory. The steps are ``Trainer.fit``'s own; a callback stops the clock for
each evaluation and ends the run at the budget (sample grids and checkpoints during the run are
off, so that the clock holds only batches and steps). Writes ``<out>/curve.json`` after every point, then ``curve.md`` and
``demo_learning_curve.png`` (accuracy curves with the 0.80 target for shape+colour+position, and
FD, against training minutes); ``--write-docs`` copies the figure to docs/img/ and rewrites the
section between ``<!-- demo_learning_curve:start -->`` and ``<!-- demo_learning_curve:end -->``
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

SCRIPT = "demo_learning_curve.py"
SECTION = "demo_learning_curve"
PNG = "demo_learning_curve.png"
TARGET = 0.80
SCP = "attr_acc[shape+color+position]"
ALL = "attr_acc[all_mentioned]"
FD = "FD[oracle]"
ATTR_ORDER = ("shape", "color", "size", "fine", "position", "count")
METRICS = [
    {"type": "attribute_accuracy"},
    {"type": "fid", "params": {"extractor": "oracle", "kid": False}},
]
NO_STEP_LIMIT = 10**9


def overrides(args: argparse.Namespace) -> list[str]:
    """The recipe overrides (``t2i-stages run --set`` items) of the curve's run."""
    return [
        f"seed={args.seed}",
        f"train.max_steps={NO_STEP_LIMIT}",
        "train.max_minutes=null",
        f"train.sample_every={NO_STEP_LIMIT}",  # the clock runs through the loop's own writing
        f"train.ckpt_every={NO_STEP_LIMIT}",
        f"train.threads={args.threads}",
        f"eval.num_samples={args.eval_samples}",
        "eval.metrics=" + json.dumps(METRICS),
        *args.set,
    ]


def flat_metrics(results: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """metrics.json ``results`` -> {number name: value} and {metric: error}."""
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for key, res in results.items():
        if "error" in res:
            errors[key] = res["error"]
        else:
            values.update(res.get("values", {}))
    return values, errors


def first_reaching(
    points: list[dict[str, Any]], key: str = SCP, target: float = TARGET
) -> dict[str, Any] | None:
    """The first evaluation point whose ``key`` is at least ``target`` (None if none is)."""
    for p in points:
        v = p["metrics"].get(key)
        if v is not None and v == v and v >= target:
            return p
    return None


def target_sentence(points: list[dict[str, Any]], minutes: float) -> str:
    """Whether and when shape+colour+position reached the 0.80 target, in words."""
    have = [p for p in points if bc.finite([p["metrics"].get(SCP)])]
    if not have:
        return (
            f"shape+colour+position: n/a (the attribute_accuracy metric gave no `{SCP}`), so "
            "whether it reached 0.80 cannot be read from this run."
        )
    hit = first_reaching(points)
    best = max(have, key=lambda p: p["metrics"][SCP])
    if hit is None:
        return (
            f"shape+colour+position did **not** reach {TARGET:.2f} within {minutes:g} minutes of "
            f"training: best {best['metrics'][SCP]:.3f} at {best['train_seconds'] / 60:.2f} min "
            f"(step {best['step']})."
        )
    i = points.index(hit)
    before = next(
        (p for p in reversed(points[:i]) if bc.finite([p["metrics"].get(SCP)])),
        None,
    )
    after = [p for p in points[i + 1 :] if bc.finite([p["metrics"].get(SCP)])]
    kept = sum(p["metrics"][SCP] >= TARGET for p in after)
    text = (
        f"shape+colour+position first reached {TARGET:.2f} at the {hit['train_seconds'] / 60:.2f}"
        f"-minute evaluation (step {hit['step']}: {hit['metrics'][SCP]:.3f})"
    )
    if before is not None:
        text += (
            f"; the evaluation before, at {before['train_seconds'] / 60:.2f} min (step "
            f"{before['step']}), had {before['metrics'][SCP]:.3f}"
        )
    if after:
        text += f"; it was at or above {TARGET:.2f} in {kept} of the {len(after)} later evaluations"
    return text + f" (best {best['metrics'][SCP]:.3f})."


def attr_columns(points: list[dict[str, Any]]) -> list[str]:
    """Attribute keys with at least one number, in a fixed order, then all_mentioned and s+c+p."""
    seen = {k for p in points for k, v in p["metrics"].items() if k.startswith("attr_acc[")}
    keys = [f"attr_acc[{a}]" for a in ATTR_ORDER if f"attr_acc[{a}]" in seen]
    keys += sorted(seen - set(keys) - {ALL, SCP})
    keys = [k for k in keys if any(bc.finite([p["metrics"].get(k)]) for p in points)]
    return [*keys, ALL, SCP]


def curve_table(points: list[dict[str, Any]]) -> str:
    """One row per evaluation: training minutes, step, accuracies, FD, eval time."""
    cols = attr_columns(points)
    header = [
        "train min",
        "step",
        *(k[len("attr_acc[") : -1] for k in cols),
        "FD[oracle]",
        "eval s",
    ]
    rows = [
        [
            f"{p['train_seconds'] / 60:.2f}",
            str(p["step"]),
            *(bc.fmt_num(p["metrics"].get(k)) for k in cols),
            bc.fmt_num(p["metrics"].get(FD)),
            f"{p['eval_seconds']:.0f}",
        ]
        for p in points
    ]
    return bc.markdown_table(header, rows)


def plot(points: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Accuracy curves (with the 0.80 target) and FD[oracle] against training minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["train_seconds"] / 60 for p in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key in attr_columns(points):
        ys = [p["metrics"].get(key) for p in points]
        ys = [y if bc.finite([y]) else float("nan") for y in ys]
        if not bc.finite(ys):
            continue
        bold = key in (SCP, ALL)
        ax1.plot(x, ys, marker="o", ms=3, lw=2.2 if bold else 1.2, label=key[len("attr_acc[") : -1])
    ax1.axhline(TARGET, color="black", ls="--", lw=1, label="0.80 target (shape+color+position)")
    ax1.set_ylim(0, 1.02)
    ax1.set_xlabel("training minutes (evaluation excluded)")
    ax1.set_ylabel("oracle accuracy")
    ax1.legend(fontsize=7, loc="lower right")
    ax1.grid(alpha=0.3)
    fd = [p["metrics"].get(FD) for p in points]
    ax2.plot(x, [v if bc.finite([v]) else float("nan") for v in fd], marker="o", ms=3, color="C3")
    ax2.set_xlabel("training minutes (evaluation excluded)")
    ax2.set_ylabel("FD[oracle] (lower is better)")
    if bc.finite(fd) and min(bc.finite(fd)) > 0:
        ax2.set_yscale("log")
    ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def docs_section(curve: dict[str, Any], argv: list[str], img_prefix: str) -> str:
    """The docs/benchmarks.md section; every number comes from ``curve``."""
    a, pts = curve["args"], curve["points"]
    last = pts[-1] if pts else {"step": 0, "train_seconds": 0.0}
    rate = last["step"] / last["train_seconds"] if last["train_seconds"] else float("nan")
    batch = curve.get("batch_size", "?")
    lines = [
        "## Demo learning curve (issue 11)",
        "",
        f"`{a['recipe']}` (the `make demo` recipe), seed {a['seed']}, trained for "
        f"{a['minutes']:g} minutes of pure training time (`train.max_minutes` null, "
        "`train.max_steps` not binding): the clock runs while a batch is loaded and a step is "
        "taken and stops during evaluations and the final checkpoint. At step 0 and every "
        f"{a['every_minutes']:g} training minutes the EMA generator is scored on the first "
        f"{a['eval_samples']} test (held-out) captions: the shapes oracle's accuracy on each "
        "attribute the captions mention, every mentioned attribute right (`all_mentioned`), "
        "shape+colour+position right (`shape+color+position`), and `FD[oracle]`, the Fréchet "
        "distance in the oracle's feature space (in-domain, not FID). One run, one seed: the "
        "points are not averaged.",
        "",
        target_sentence(pts, a["minutes"]),
        "",
        curve_table(pts),
        "",
        f"{last['step']} steps in {last['train_seconds'] / 60:.1f} training minutes "
        f"({rate:.2f} steps/s, batch {batch}); setup (datasets, matcher pretraining or cache) "
        f"{curve['setup_seconds']:.0f} s; the {len(pts)} evaluations took "
        f"{sum(p['eval_seconds'] for p in pts):.0f} s in all; whole script "
        f"{curve['wall_seconds'] / 60:.1f} min wall.",
        "",
        f"![learning curve]({img_prefix}{PNG})",
        "",
        bc.machine_line(curve["machine"]),
        "",
        f"Rerun: `{bc.command_line(SCRIPT, argv)}` (a new `--out` each time; the recipe's matcher "
        "is pretrained once and cached under `$T2I_STAGES_HOME`, with a time cap in the demo "
        "recipes, so fill the cache on a quiet machine). Per-point numbers, losses and CPU seconds: "
        f"`{a['out']}/curve.json`; each evaluation's metrics.json: `{a['out']}/evals/`.",
    ]
    return "\n".join(lines)


def train_curve(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Train with a pausable clock and evaluate at the training-time marks; returns the curve."""
    import torch

    from t2i_stages import load_registry
    from t2i_stages.evaluation.runner import evaluate_trainer
    from t2i_stages.plugins.datasets.shapes.oracle import load_oracle
    from t2i_stages.recipe import load_recipe
    from t2i_stages.seeding import rng_state, set_rng_state
    from t2i_stages.training import Callback, Runtime, Trainer, prepare_run_folder

    wall0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    registry = load_registry()
    recipe = load_recipe(args.recipe, overrides(args), registry)
    runtime = Runtime.create(device=args.device, precision=recipe.train.precision)
    out: Path = args.out
    prepare_run_folder(recipe, registry, out, resume=False)
    t0 = time.perf_counter()
    trainer = Trainer(recipe, registry, out, runtime)
    setup_s = time.perf_counter() - t0
    vocab = getattr(trainer.assembly.train_data, "vocab", None)
    if vocab is not None and hasattr(vocab, "save"):
        vocab.save(out / "vocab.json")
    test = trainer.assembly.test_data
    t0 = time.perf_counter()
    load_oracle(test, resolution=max(trainer.G.resolutions))  # trained once, outside the points
    oracle_s = time.perf_counter() - t0
    curve: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "command": bc.command_line(SCRIPT, argv),
        "machine": bc.machine_info(),
        "batch_size": recipe.data.batch_size,
        "setup_seconds": setup_s,
        "oracle_seconds": oracle_s,
        "points": [],
        "complete": False,
    }
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    state = {"train_s": 0.0, "cpu_s": 0.0, "logs": {}}

    def evaluate() -> None:
        trainer.check_deferred()  # a point never scores past an unreported divergence
        rng = rng_state()
        t = time.perf_counter()
        folder = out / "evals" / f"step_{trainer.step:08d}"
        report = evaluate_trainer(trainer, folder, strict=False)
        eval_s = time.perf_counter() - t
        set_rng_state(rng)
        values, errors = flat_metrics(report["results"])
        for k, e in errors.items():
            print(f"warning: metric '{k}' failed at step {trainer.step}: {e}")
        point = {
            "train_seconds": state["train_s"],
            "train_minutes": state["train_s"] / 60,
            "cpu_seconds": state["cpu_s"],
            "step": trainer.step,
            "eval_seconds": eval_s,
            "wall_seconds": time.perf_counter() - wall0,
            "metrics": values,
            "errors": errors,
            "losses": {k: float(v) for k, v in state["logs"].items()},
        }
        curve["points"].append(point)
        bc.write_json(out / "curve.json", curve)
        print(
            f"[{state['train_s'] / 60:6.2f} train min, step {trainer.step}] "
            f"shape+color+position {bc.fmt_num(values.get(SCP))}, all_mentioned "
            f"{bc.fmt_num(values.get(ALL))}, FD[oracle] {bc.fmt_num(values.get(FD))} "
            f"(eval {eval_s:.0f} s)"
        )

    budget = args.minutes * 60
    every = args.every_minutes * 60

    class Marks(Callback):
        """Stops the clock for each evaluation; asks the loop to stop at the budget."""

        def __init__(self) -> None:
            self.next_mark = every
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_step(self, trainer: Any, logs: dict[str, Any]) -> bool:
            sync()
            state["train_s"] += time.perf_counter() - self.wall
            state["cpu_s"] += time.process_time() - self.cpu
            state["logs"] = logs
            if state["train_s"] >= self.next_mark or state["train_s"] >= budget:
                evaluate()
                while self.next_mark <= state["train_s"]:
                    self.next_mark += every
            self.wall, self.cpu = time.perf_counter(), time.process_time()
            return state["train_s"] >= budget

    if not args.skip_start_eval:
        evaluate()
    summary = trainer.fit([Marks()])  # its last checkpoint falls outside the clock
    if summary.get("signal"):
        print(f"stopped at step {trainer.step}; the points so far are in {out / 'curve.json'}")
        return curve
    curve["complete"] = True
    curve["wall_seconds"] = time.perf_counter() - wall0
    bc.write_json(out / "curve.json", curve)
    return curve


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--recipe", default="recipes/grgan.yaml", help="recipe (the make-demo one)")
    p.add_argument("--minutes", type=float, default=30.0, help="training-time budget (30)")
    p.add_argument(
        "--every-minutes", type=float, default=2.5, help="training minutes between points (2.5)"
    )
    p.add_argument(
        "--eval-samples", type=int, default=2000, help="held-out captions per point (2000)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (train.threads; 2)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (0)")
    p.add_argument("--out", type=Path, default=Path("runs/demo-curve"), help="run folder (new)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument(
        "--skip-start-eval", action="store_true", help="no evaluation at step 0 (untrained)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra recipe override (repeatable), as t2i-stages run --set",
    )
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument(
        "--docs", type=Path, default=bc.DOCS, help="the Markdown file --write-docs updates"
    )
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.every_minutes <= 0:
        p.error("--minutes and --every-minutes must be positive")
    if args.eval_samples < 2 or args.threads < 1:
        p.error("--eval-samples must be at least 2 and --threads at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from t2i_stages.errors import T2IError

    try:
        curve = train_curve(args, argv)
    except T2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    pts = curve["points"]
    table = curve_table(pts)
    sentence = target_sentence(pts, args.minutes)
    (args.out / "curve.md").write_text(f"{sentence}\n\n{table}\n", encoding="utf-8")
    title = (
        f"{args.recipe}, seed {args.seed}: EMA generator on {args.eval_samples} held-out captions"
    )
    fig = plot(pts, args.out / PNG, title)
    print(table)
    print(sentence)
    print(f"curve: {args.out / 'curve.json'}, figure: {fig}")
    if args.write_docs:
        img_dir = args.docs.parent / "img"
        img_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fig, img_dir / PNG)
        bc.write_docs_section(args.docs, SECTION, docs_section(curve, argv, "img/"))
        print(f"updated {args.docs} (section '{SECTION}') and {img_dir / PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
