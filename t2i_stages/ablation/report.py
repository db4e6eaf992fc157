"""The comparison: per-run numbers from each run's metrics.json, aggregated across seeds.

Writes ``table.md`` and ``table.csv`` (one row per variant: for every chosen metric the mean,
the sample standard deviation and the 95% bootstrap interval of the mean across seeds; then one
line per claim and metric: the difference, its interval and a permutation test),
``runs.csv`` (every run's number, one per line), ``claims.csv`` and ``chart.png`` (one bar panel
per metric, error bars = the 95% interval, one dot per seed).
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import T2IError
from ..run_files import read_json
from .plan import MARKER, AblationPlan, PlannedRun
from .spec import Claim, MetricSpec
from .stats import Comparison, bootstrap_mean_ci, compare


@dataclass
class RunResult:
    """What one finished run reported."""

    variant: str
    seed: int
    out: Path
    step: int | None
    results: dict[str, Any]  # metrics.json "results"


@dataclass
class Cell:
    """One metric of one variant across its seeds."""

    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation across seeds (None with fewer than two)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def ci(self) -> tuple[float, float] | None:
        """The 95% percentile-bootstrap interval of the mean (None with fewer than two)."""
        return bootstrap_mean_ci(self.values)


@dataclass
class Row:
    """One variant's line of the table."""

    variant: str
    description: str
    changes: list[str]
    reference: bool
    seeds: list[int]
    cells: dict[str, Cell]


def read_run(run: PlannedRun) -> RunResult | None:
    """The finished run's results, or None when it has not finished."""
    metrics, marker = run.out / "metrics.json", run.out / MARKER
    if not metrics.is_file() or not marker.is_file():
        return None
    try:
        report, info = read_json(metrics), read_json(marker)
    except T2IError:  # a damaged run is not finished: the ablation runs it again
        return None
    if not run.is_its_marker(info.get("recipe_sha256")):
        return None
    return RunResult(
        run.variant.name, run.seed, run.out, info.get("step"), report.get("results", {})
    )


def lookup(results: dict[str, Any], name: str) -> float | None:
    """A value by name ('FD[matcher]') or metric key and name ('fid/FD[matcher]')."""
    if "/" in name:
        key, value_name = name.split("/", 1)
        value = results.get(key, {}).get("values", {}).get(value_name)
    else:
        value = None
        for entry in results.values():
            if isinstance(entry, dict) and name in entry.get("values", {}):
                value = entry["values"][name]
                break
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def declared_direction(results: dict[str, Any], name: str) -> str | None:
    """What the metric reporting ``name`` declared (its ``better`` in metrics.json), if any."""
    if "/" in name:
        key, value_name = name.split("/", 1)
        entries = [(results.get(key), value_name)]
    else:
        entries = [(e, name) for e in results.values() if isinstance(e, dict)]
    for entry, value_name in entries:
        if isinstance(entry, dict) and value_name in entry.get("values", {}):
            better = (entry.get("better") or {}).get(value_name)
            return better if better in ("higher", "lower", "neutral") else None
    return None


def with_directions(metrics: list[MetricSpec], results: list[RunResult]) -> list[MetricSpec]:
    """The columns with ``better`` filled in: the ablation file's choice, else what the first
    run reporting the value declares, else neutral. Never guessed from the name."""
    out = []
    for m in metrics:
        better = m.better
        for r in results:
            if better is not None:
                break
            better = declared_direction(r.results, m.name)
        out.append(m.model_copy(update={"better": better or "neutral"}))
    return out


_ARROWS = {"higher": " ↑", "lower": " ↓", "neutral": ""}
_SAYS = {"higher": " (higher is better)", "lower": " (lower is better)", "neutral": ""}


def default_metrics(results: list[RunResult]) -> list[MetricSpec]:
    """Every value the given runs report, in their order (when the file names no metrics)."""
    names: list[str] = []
    for r in results:
        for entry in r.results.values():
            for name in (entry or {}).get("values", {}) if isinstance(entry, dict) else {}:
                if name not in names:
                    names.append(name)
    return [MetricSpec(name=n) for n in names]


def aggregate(plan: AblationPlan, results: list[RunResult], metrics: list[MetricSpec]) -> list[Row]:
    """One row per variant: each metric's values over the seeds that finished."""
    ref = plan.spec.reference_variant.name
    rows = []
    for variant in plan.variants:
        mine = [r for r in results if r.variant == variant.name]
        cells = {}
        for m in metrics:
            cell = Cell()
            for r in mine:
                v = lookup(r.results, m.name)
                if v is not None:
                    cell.values.append(v)
            cells[m.name] = cell
        rows.append(
            Row(
                variant.name,
                variant.description,
                variant.changes,
                variant.name == ref,
                [r.seed for r in mine],
                cells,
            )
        )
    return rows


@dataclass
class ClaimResult:
    """One claim on one metric: the comparison of the two variants' seeds."""

    claim: Claim
    metric: MetricSpec
    comparison: Comparison | None  # None while a side has no finished run

    @property
    def better(self) -> str | None:
        """Which variant the means favour, given the metric's direction (None: neutral/tied)."""
        c = self.comparison
        if c is None or c.difference == 0 or self.metric.direction == "neutral":
            return None
        a_wins = (c.difference > 0) == (self.metric.direction == "higher")
        return self.claim.a if a_wins else self.claim.b


def claim_results(
    plan: AblationPlan, rows: list[Row], metrics: list[MetricSpec]
) -> list[ClaimResult]:
    """Every claim of the study on each of its metrics, from the finished seeds."""
    by_variant = {r.variant: r for r in rows}
    out = []
    for claim in plan.spec.claims:
        a, b = by_variant.get(claim.a), by_variant.get(claim.b)
        chosen = [m for m in metrics if not claim.metrics or m.name in claim.metrics]
        for m in chosen:
            xs = a.cells[m.name].values if a else []
            ys = b.cells[m.name].values if b else []
            out.append(ClaimResult(claim, m, compare(xs, ys) if xs and ys else None))
    return out


def _num(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(plan: AblationPlan, rows: list[Row], metrics: list[MetricSpec]) -> str:
    spec = plan.spec
    ref = spec.reference_variant.name
    budget = ", ".join(f"{f}={_budget(plan, f)}" for f in spec.same_budget)
    head = (
        ["variant", "seeds"]
        + [f"{m.title}{_ARROWS[m.direction]}" for m in metrics]
        + ["changes from the base recipe"]
    )
    lines = [
        f"# Ablation: {spec.name}",
        "",
        *([spec.description.strip(), ""] if spec.description.strip() else []),
        f"Base recipe `{_shown(plan.base)}`; seeds {', '.join(map(str, plan.seeds))}; shared budget: "
        f"{budget}.",
        *(
            [f"Overrides for every variant: `{'`, `'.join(spec.set + plan.overrides)}`."]
            if spec.set or plan.overrides
            else []
        ),
        "Each cell: mean ± sample standard deviation across seeds [95% bootstrap interval of "
        "the mean] (n = finished seeds).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        name = f"**{row.variant}** (reference)" if row.variant == ref else row.variant
        cells = []
        for m in metrics:
            c = row.cells[m.name]
            if c.mean is None:
                cells.append("n/a")
            elif c.std is None:
                cells.append(f"{_num(c.mean)} (n={c.n})")
            else:
                lo, hi = c.ci or (None, None)
                cells.append(f"{_num(c.mean)} ± {_num(c.std)} [{_num(lo)}, {_num(hi)}] (n={c.n})")
        changes = "; ".join(f"`{_md_escape(ch)}`" for ch in row.changes) or "—"
        lines.append("| " + " | ".join([name, str(len(row.seeds))] + cells + [changes]) + " |")
    lines += _claims_markdown(claim_results(plan, rows, metrics))
    described = [r for r in rows if r.description]
    if described:
        lines += ["", "Variants:", ""]
        lines += [f"- **{r.variant}**: {_md_escape(r.description)}" for r in described]
    lines.append("")
    return "\n".join(lines)


def _claims_markdown(claims: list[ClaimResult]) -> list[str]:
    if not claims:
        return []
    lines = [
        "",
        "Claims: difference of the means (a - b) with its 95% bootstrap interval, and a "
        "two-sided permutation test of it over the seeds (exact: every split of the seeds).",
        "",
        "| claim | metric | a | b | a - b [95% interval] | p | favours |",
        "|---|---|---|---|---|---|---|",
    ]
    for cr in claims:
        c = cr.comparison
        head = f"{_md_escape(cr.claim.title)} | {cr.metric.title}{_ARROWS[cr.metric.direction]}"
        if c is None:
            lines.append(f"| {head} | n/a | n/a | no finished runs on one side | | |")
            continue
        lo, hi = c.interval or (None, None)
        diff = (
            f"{_num(c.difference)} [{_num(lo)}, {_num(hi)}]" if c.interval else _num(c.difference)
        )
        p = "n/a" if c.p_value is None else f"{c.p_value:.3g}" + ("" if c.exact else " (MC)")
        lines.append(
            f"| {head} | {_num(c.mean_a)} (n={c.n_a}) | {_num(c.mean_b)} (n={c.n_b}) | {diff} "
            f"| {p} | {cr.better or '—'} |"
        )
    return lines


def _budget(plan: AblationPlan, dotted: str) -> str:
    from .plan import get_path

    value = get_path(plan.runs_of(plan.spec.reference_variant.name)[0].resolved, dotted)
    return "null" if value is None else str(value)


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_tables(
    plan: AblationPlan, rows: list[Row], results: list[RunResult], metrics: list[MetricSpec]
) -> tuple[Path, Path, Path]:
    """table.md, table.csv (one row per variant) and runs.csv (one line per run and metric)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    md = plan.out / "table.md"
    md.write_text(format_markdown(plan, rows, metrics), encoding="utf-8")
    table_csv = plan.out / "table.csv"
    with open(table_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        header = ["variant", "reference", "seeds", "changes"]
        for m in metrics:
            header += [f"{m.name} mean", f"{m.name} std", f"{m.name} n"]
            header += [f"{m.name} ci95 low", f"{m.name} ci95 high"]
        w.writerow(header)
        for row in rows:
            line: list[Any] = [
                row.variant,
                int(row.reference),
                " ".join(map(str, row.seeds)),
                "; ".join(row.changes),
            ]
            for m in metrics:
                c = row.cells[m.name]
                lo, hi = c.ci or (None, None)
                line += [_csv(c.mean), _csv(c.std), c.n, _csv(lo), _csv(hi)]
            w.writerow(line)
    runs_csv = plan.out / "runs.csv"
    with open(runs_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["variant", "seed", "metric", "value", "step", "run"])
        for r in results:
            for m in metrics:
                w.writerow(
                    [r.variant, r.seed, m.name, _csv(lookup(r.results, m.name)), r.step, r.out]
                )
    claims_csv = plan.out / "claims.csv"
    if plan.spec.claims:
        with open(claims_csv, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(
                ["claim", "a", "b", "metric", "mean a", "n a", "mean b", "n b", "a - b",
                 "ci95 low", "ci95 high", "p", "exact", "favours"]
            )  # fmt: skip
            for cr in claim_results(plan, rows, metrics):
                c = cr.comparison
                lo, hi = c.interval if c and c.interval else (None, None)
                w.writerow(
                    [cr.claim.title, cr.claim.a, cr.claim.b, cr.metric.name]
                    + (
                        [_csv(c.mean_a), c.n_a, _csv(c.mean_b), c.n_b, _csv(c.difference),
                         _csv(lo), _csv(hi), _csv(c.p_value), int(c.exact), cr.better or ""]
                        if c else [""] * 10
                    )
                )  # fmt: skip
    return md, table_csv, runs_csv


def _csv(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def write_chart(plan: AblationPlan, rows: list[Row], metrics: list[MetricSpec]) -> Path:
    """One bar panel per metric: mean per variant, error bar = its 95% bootstrap interval,
    dots = seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = plan.out / "chart.png"
    # a metric no run reports stays in the table as n/a but gets no empty panel
    metrics = [m for m in metrics if any(r.cells[m.name].values for r in rows)]
    n = max(1, len(metrics))
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    width = max(4.0, 0.7 * len(rows) + 1.5)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, 3.6 * nrows), squeeze=False)
    names = [r.variant for r in rows]
    colors = ["#4c72b0" if not r.reference else "#dd8452" for r in rows]
    for k, m in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        means = [r.cells[m.name].mean for r in rows]
        bars = [v if v is not None else 0.0 for v in means]
        cis = [r.cells[m.name].ci for r in rows]
        below = [max(0.0, v - ci[0]) if ci else 0.0 for v, ci in zip(bars, cis, strict=True)]
        above = [max(0.0, ci[1] - v) if ci else 0.0 for v, ci in zip(bars, cis, strict=True)]
        xs = list(range(len(rows)))
        ax.bar(
            xs,
            bars,
            yerr=[below, above],
            color=colors,
            capsize=4,
            alpha=0.85,
        )
        for x, r in zip(xs, rows, strict=True):
            vals = r.cells[m.name].values
            ax.plot([x] * len(vals), vals, "k.", markersize=5)
            if not vals:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{m.title}{_SAYS[m.direction]}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(metrics), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    if not metrics:
        axes[0][0].text(0.5, 0.5, "no finished run yet", ha="center", va="center")
    seeds = ", ".join(map(str, plan.seeds))
    fig.suptitle(
        f"{plan.spec.name}: mean and 95% bootstrap interval over seeds {seeds} (dots: seeds)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
