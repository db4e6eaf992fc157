"""Run an ablation: validate every run, train what is missing, then write the comparison.

Runs go seed by seed (every variant at the first seed, then the next seed...), so an interrupted
study already compares all variants. A finished run (its ``ablation-run.json`` marker matches the
recipe) is skipped; a started one resumes from its newest checkpoint.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import Registry, load_registry
from .plan import MARKER, AblationPlan, PlannedRun, plan_ablation
from .report import (
    RunResult,
    aggregate,
    default_metrics,
    read_run,
    with_directions,
    write_chart,
    write_tables,
)
from .spec import MetricSpec


@dataclass
class AblationResult:
    """What ``run_ablation`` did and where the comparison is."""

    plan: AblationPlan
    trained: list[str] = field(default_factory=list)  # "variant/seed-N" run this time
    skipped: list[str] = field(default_factory=list)  # already finished
    stopped: str | None = None  # the signal that stopped the study, if any
    table_md: Path | None = None
    table_csv: Path | None = None
    runs_csv: Path | None = None
    chart: Path | None = None
    rows: list[Any] = field(default_factory=list)


def _write_marker(run: PlannedRun, summary: dict[str, Any]) -> None:
    info = {
        "variant": run.variant.name,
        "seed": run.seed,
        "recipe_sha256": run.recipe_hash,
        "step": summary.get("step"),
        "train_seconds": round(float(summary.get("seconds", 0.0)), 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    tmp = run.out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    tmp.replace(run.out / MARKER)


def _write_plan(plan: AblationPlan) -> Path:
    plan.out.mkdir(parents=True, exist_ok=True)
    data = {
        "ablation": plan.spec.model_dump(),
        "file": str(plan.path),
        "base": str(plan.base),
        "overrides": plan.overrides,
        "seeds": plan.seeds,
        "differences_from_reference": plan.differences,
        "runs": [
            {
                "variant": r.variant.name,
                "seed": r.seed,
                "out": str(r.out),
                "status": r.status,
                "recipe_sha256": r.recipe_hash,
            }
            for r in plan.runs
        ],
    }
    path = plan.out / "ablation.json"
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path


def ablate_command(plan: AblationPlan) -> str:
    """The command line that continues this study."""
    parts = ["t2i-stages", "ablate", str(plan.path)]
    for item in plan.overrides:
        parts += ["--set", item]
    if plan.seeds != plan.spec.seeds:
        parts += ["--seeds", ",".join(map(str, plan.seeds))]
    parts += ["--out", str(plan.out)]
    return shlex.join(parts)


def write_comparison(plan: AblationPlan, result: AblationResult, log=print) -> AblationResult:
    """Collect every finished run and write the tables and the chart."""
    results: list[RunResult] = [r for r in (read_run(run) for run in plan.runs) if r is not None]
    metrics: list[MetricSpec] = list(plan.spec.metrics)
    if not metrics:
        ref = plan.spec.reference_variant.name
        metrics = default_metrics([r for r in results if r.variant == ref] or results)
    for m in metrics:
        from .report import lookup

        if results and all(lookup(r.results, m.name) is None for r in results):
            log(f"ablate: no finished run reports '{m.name}' (shown as n/a)")
    metrics = with_directions(metrics, results)
    rows = aggregate(plan, results, metrics)
    result.rows = rows
    result.table_md, result.table_csv, result.runs_csv = write_tables(plan, rows, results, metrics)
    result.chart = write_chart(plan, rows, metrics)
    return result


def run_ablation(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    registry: Registry | None = None,
    out_dir: str | Path | None = None,
    seeds: list[int] | None = None,
    variants: list[str] | None = None,
    device: str | None = None,
    log: Callable[..., None] = print,
    train_log: Callable[..., None] | None = None,
) -> AblationResult:
    """Validate every run of the study, train and evaluate the unfinished ones, compare them.

    Returns an :class:`AblationResult` with the paths of ``table.md``, ``table.csv``,
    ``runs.csv`` and ``chart.png`` under the study folder (default runs/ablations/<name>/).
    """
    from ..training import train

    registry = registry or load_registry()
    plan = plan_ablation(path, overrides, registry, out_dir, seeds, variants)
    _write_plan(plan)
    result = AblationResult(plan)
    total = len(plan.runs)
    todo = sum(r.status != "done" for r in plan.runs)
    log(
        f"ablate: {len(plan.variants)} variants x {len(plan.seeds)} seeds = {total} runs "
        f"validated; {total - todo} finished, {todo} to train -> {plan.out}"
    )
    started, trained_now = time.time(), 0
    for k, run in enumerate(plan.runs, 1):
        key = f"{run.variant.name}/seed-{run.seed}"
        if run.status == "done":
            log(f"ablate: [{k}/{total}] {run.label}: finished, skipped")
            result.skipped.append(key)
            continue
        verb = "resuming" if run.status == "resume" else "training"
        log(f"ablate: [{k}/{total}] {run.label}: {verb} in {run.out}")
        summary = train(
            run.recipe,
            registry,
            out_dir=run.out,
            resume=run.out.exists(),
            device=device,
            evaluate=True,
            log=train_log or log,
            resume_command=ablate_command(plan),
        )
        if summary.get("signal"):
            result.stopped = summary["signal"]
            log(f"ablate: stopped by {result.stopped}; continue with: {ablate_command(plan)}")
            break
        _write_marker(run, summary)
        run.status = "done"
        result.trained.append(key)
        trained_now += 1
        left = sum(r.status != "done" for r in plan.runs)
        if left:
            per_run = (time.time() - started) / trained_now
            log(
                f"ablate: {trained_now} run(s) took {per_run / 60:.1f} min each (training and "
                f"evaluation); the {left} left take about {left * per_run / 60:.0f} min"
            )
        if summary.get("stop", {}).get("advice"):
            log(f"ablate: warning: {key} {summary['stop']['advice']}")
    _write_plan(plan)
    write_comparison(plan, result, log)
    log(f"ablate: table {result.table_md}, {result.table_csv}; chart {result.chart}")
    return result
