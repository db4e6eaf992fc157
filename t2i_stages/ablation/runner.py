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
from .execute import LAUNCH_LOG, run_key
from .launchers import LaunchSettings, Study, make_launcher
from .plan import AblationPlan, plan_ablation
from .records import restore_records, save_records
from .report import (
    RunResult,
    aggregate,
    default_metrics,
    read_run,
    with_directions,
    write_chart,
    write_tables,
)
from .spec import AblationError, MetricSpec


@dataclass
class AblationResult:
    """What ``run_ablation`` did and where the comparison is."""

    plan: AblationPlan
    trained: list[str] = field(default_factory=list)  # "variant/seed-N" run this time
    skipped: list[str] = field(default_factory=list)  # already finished
    stopped: str | None = None  # the signal that stopped the study (or one of its runs)
    interrupted: list[str] = field(default_factory=list)  # stopped or cancelled: resume next time
    failed: list[str] = field(default_factory=list)  # under a concurrent launcher
    table_md: Path | None = None
    table_csv: Path | None = None
    runs_csv: Path | None = None
    chart: Path | None = None
    rows: list[Any] = field(default_factory=list)


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
    launch: LaunchSettings | None = None,
    records: str | Path | None = None,
) -> AblationResult:
    """Validate every run of the study, train and evaluate the unfinished ones, compare them.

    ``launch`` says where the runs execute (default: one after another in this process; see
    ``launchers.LaunchSettings``). Returns an :class:`AblationResult` with the paths of
    ``table.md``, ``table.csv``, ``runs.csv`` and ``chart.png`` under the study folder (default
    runs/ablations/<name>/). Under a concurrent launcher a run that fails does not stop the
    others; the comparison of the finished ones is written and then an ``AblationError``
    names the failed runs.

    ``records``: a folder that keeps the study's finished runs beyond this machine
    (``records.py``): those found there are restored into the study folder before planning (so
    they are skipped and compared), and after the study every finished run and the comparison
    are saved there.
    """
    registry = registry or load_registry()
    plan = plan_ablation(path, overrides, registry, out_dir, seeds, variants)
    if records is not None and Path(records).is_dir():
        restored = restore_records(records, plan.out)
        if restored:
            log(f"ablate: {len(restored)} finished run(s) restored from {records}")
            plan = plan_ablation(path, overrides, registry, out_dir, seeds, variants)
    launcher = make_launcher(launch or LaunchSettings(), plan, device)
    _write_plan(plan)
    result = AblationResult(plan)
    total = len(plan.runs)
    todo = [r for r in plan.runs if r.status != "done"]
    log(
        f"ablate: {len(plan.variants)} variants x {len(plan.seeds)} seeds = {total} runs "
        f"validated; {total - len(todo)} finished, {len(todo)} to train -> {plan.out}"
    )
    study = Study(plan, registry, ablate_command(plan), device, log, train_log, total)
    study.index = {run_key(r): k for k, r in enumerate(plan.runs, 1)}
    for k, run in enumerate(plan.runs, 1):
        if run.status == "done":
            log(f"ablate: [{k}/{total}] {run.label}: finished, skipped")
            result.skipped.append(run_key(run))
        elif launcher.concurrent:
            verb = "resuming" if run.status == "resume" else "training"
            log(f"ablate: [{k}/{total}] {run.label}: {verb} in {run.out} (queued)")
    if todo and launcher.concurrent:
        log(f"ablate: launching {len(todo)} run(s) on {launcher.describe()}")
    by_key = {run_key(r): r for r in todo}
    started, failed = time.time(), []
    for outcome in launcher.launch(study, todo):
        _take(outcome, by_key[outcome.key], result, failed, launcher, log)
        if outcome.status == "done":
            _estimate(result, plan, launcher, started, log)
        if outcome.advice:
            log(f"ablate: warning: {outcome.key} {outcome.advice}")
    if result.stopped:
        log(f"ablate: stopped by {result.stopped}; continue with: {ablate_command(plan)}")
    _write_plan(plan)
    whole, complete = _whole_study(plan, path, overrides, registry, out_dir, seeds, variants, log)
    write_comparison(whole, result, log)
    log(f"ablate: table {result.table_md}, {result.table_csv}; chart {result.chart}")
    if records is not None:
        saved = save_records(whole, records, comparison=complete)
        kept = "the comparison" if complete else "not the comparison of this piece only"
        log(f"ablate: records of {len(saved)} finished run(s) and {kept} in {records}")
    if failed:
        shown = "; ".join(f"{o.key}: {o.error}" for o in failed)
        raise AblationError(
            f"ablate: {len(failed)} run(s) failed ({shown}); their launch.log has the traceback; "
            f"the others are in {result.table_md}. Continue with: {ablate_command(plan)}"
        )
    return result


def _whole_study(
    plan, path, overrides, registry, out_dir, seeds, variants, log
) -> tuple[AblationPlan, bool]:
    """The plan the comparison is written from: every variant and seed of the file, and
    whether it is that (False: this piece's plan, the whole one did not validate).

    A study run in pieces (``--seeds 1``, ``--variants x``) compares every run finished so far,
    not only this piece's, so one piece's table never hides another's results.
    """
    if not seeds and not variants:
        return plan, True
    try:
        return plan_ablation(path, overrides, registry, out_dir, build_check=False), True
    except AblationError as exc:  # a variant outside this piece does not validate
        first = str(exc).splitlines()[0]
        log(f"ablate: the comparison covers this piece only: {first}")
        return plan, False


def _take(outcome, run, result, failed, launcher, log) -> None:
    """Record one run's outcome in the result (and the plan's status)."""
    key, where = outcome.key, f" [{_claim(outcome.claimed)}]" if outcome.claimed else ""
    if outcome.status == "done":
        run.status = "done"
        result.trained.append(key)
        if launcher.concurrent:
            log(f"ablate: {run.label}: finished at step {outcome.step}{where}")
    elif outcome.status == "skipped":
        run.status = "done"
        result.skipped.append(key)
        log(f"ablate: {run.label}: finished meanwhile by another launch, skipped")
    elif outcome.status == "stopped":
        result.interrupted.append(key)
        result.stopped = result.stopped or launcher.stopped_by or outcome.signal
        if launcher.concurrent:
            log(f"ablate: {run.label}: stopped by {outcome.signal} at step {outcome.step}; "
                "the next launch resumes it")  # fmt: skip
    elif outcome.status == "cancelled":
        result.interrupted.append(key)
    elif outcome.status == "busy":
        log(f"ablate: {run.label}: another process is training it; left to that one")
    else:
        failed.append(outcome)
        result.failed.append(key)
        log(f"ablate: {run.label}: failed: {outcome.error} (log: {run.out / LAUNCH_LOG})")


def _claim(claimed: dict) -> str:
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in claimed.items()
    )


def _estimate(result, plan, launcher, started, log) -> None:
    done_now = len(result.trained)
    left = sum(r.status != "done" for r in plan.runs) - len(result.failed)
    if left <= 0 or result.stopped:
        return
    elapsed = time.time() - started
    if not launcher.concurrent:
        per_run = elapsed / done_now
        log(
            f"ablate: {done_now} run(s) took {per_run / 60:.1f} min each (training and "
            f"evaluation); the {left} left take about {left * per_run / 60:.0f} min"
        )
    else:
        log(
            f"ablate: {done_now} run(s) done in {elapsed / 60:.1f} min; at this pace the {left} "
            f"left take about {left * elapsed / done_now / 60:.0f} min"
        )
