"""A study's finished runs as small records that outlive the machine that trained them.

A study of tens of runs is trained in pieces, often on machines that are handed back between
pieces (a lent GPU, a fresh cloud node). Its checkpoints are too large to keep, but a run is
*done* for the planner once its folder holds the recipe it trained (``recipe.resolved.yaml``),
its marker (``ablation-run.json``) and its numbers (``metrics.json``), and the comparison reads
only those. ``save_records`` copies them (and the human-readable ``metrics.md`` and
``training.json``) of every finished run into a folder that can be committed or carried;
``restore_records`` puts them back under a study folder, so the next piece skips those runs
and the report counts them. An unfinished run is never saved: resuming one needs its
checkpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import T2IError
from .plan import MARKER, AblationPlan

DONE_FILES = ("recipe.resolved.yaml", MARKER, "metrics.json")
"""What makes a run folder finished for the planner (``plan._existing_status``)."""
EXTRA_FILES = ("metrics.md", "training.json")
"""Kept beside them for people reading the records."""
COMPARISON_FILES = ("table.md", "table.csv", "runs.csv", "claims.csv", "chart.png")
"""The study folder's comparison (``report.write_tables``, ``write_chart``), saved at the top."""


def save_records(plan: AblationPlan, dest: str | Path, comparison: bool = True) -> list[str]:
    """Copy every finished run's records to ``dest/<variant>/seed-<n>/``, and (``comparison``)
    the study's comparison to ``dest``; returns the runs' keys. A piece of a study whose
    whole plan did not validate passes False: its narrower table must not replace the saved
    one.

    Files already in ``dest`` are replaced by the run's (a run re-trained since wins); runs that
    are not finished are left out, and their old records in ``dest`` are kept.
    """
    dest = Path(dest)
    saved = []
    for run in plan.runs:
        if run.status != "done":
            continue
        rel = run.out.relative_to(plan.out)
        _copy(run.out, dest / rel, DONE_FILES + EXTRA_FILES)
        saved.append(str(rel))
    if comparison:
        _copy(plan.out, dest, COMPARISON_FILES)
    return saved


def _copy(src: Path, dest: Path, names: tuple[str, ...]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).is_file():
            tmp = dest / (name + ".tmp")
            shutil.copyfile(src / name, tmp)
            tmp.replace(dest / name)


def restore_records(src: str | Path, study_out: str | Path) -> list[str]:
    """Put saved records back under ``study_out``; returns the run folders restored.

    A run folder that already exists is left as it is (it may hold a newer attempt or its
    checkpoints); a record missing one of ``DONE_FILES`` is refused, naming the file, since the
    planner would take it for a run to train from scratch over its own numbers.
    """
    src, study_out = Path(src), Path(study_out)
    if not src.is_dir():
        raise T2IError(f"{src}: no such records folder")
    restored = []
    for marker in sorted(src.glob(f"*/seed-*/{MARKER}")):
        record = marker.parent
        missing = [n for n in DONE_FILES if not (record / n).is_file()]
        if missing:
            raise T2IError(f"{record}: incomplete record, {', '.join(missing)} missing")
        target = study_out / record.relative_to(src)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".restoring")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(record, tmp)
        tmp.replace(target)  # whole or not at all: the planner never sees half a record
        restored.append(str(target))
    return restored
