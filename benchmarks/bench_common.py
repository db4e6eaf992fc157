"""Helpers shared by the issue-11 benchmark scripts (compare_families.py, demo_learning_curve.py).

Pure functions (statistics over seeds, table cells, docs-section replacement) plus the machine
description every written number is recorded with. The scripts import this file by path
(``sys.path`` holds ``benchmarks/`` when a script runs), so it has no package of its own.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
FINDING_PLACEHOLDER = "Finding: (filled in by the person who runs it)"


# ---------------------------------------------------------------------------- statistics


def finite(values: Iterable[Any]) -> list[float]:
    """The values that are real numbers (None, NaN and missing metrics are dropped)."""
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def summarize(values: Iterable[Any]) -> dict[str, float | int | None]:
    """mean, sample std (ddof 1; None for one value), median and n over the finite values."""
    xs = finite(values)
    if not xs:
        return {"mean": None, "std": None, "median": None, "n": 0}
    return {
        "mean": statistics.fmean(xs),
        "std": statistics.stdev(xs) if len(xs) > 1 else None,
        "median": statistics.median(xs),
        "n": len(xs),
    }


def fmt_num(v: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (fixed point), or 'n/a'."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if v != 0 and abs(v) >= 10 ** (digits - 1):
        return f"{v:.0f}"
    if v == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
    return f"{v:.{decimals}f}"


def fmt_mean_std(stats: dict[str, Any], digits: int = 3) -> str:
    """'mean ± std' for a table cell; the mean alone for one seed; 'n/a' for none."""
    if not stats or stats.get("mean") is None:
        return "n/a"
    mean = fmt_num(stats["mean"], digits)
    if stats.get("std") is None:
        return mean
    return f"{mean} ± {fmt_num(stats['std'], 2)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- docs sections


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """Put ``body`` between the ``name`` markers of ``text`` (appended at the end if absent).

    Only what lies between the two markers changes, so reruns update their own section in place
    and leave every other section of the file alone.
    """
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    i = text.find(start)
    if i >= 0:
        j = text.find(end, i + len(start))
        if j < 0:
            raise ValueError(f"'{start}' has no matching '{end}'")
        return text[:i] + block + text[j + len(end) :]
    if end in text:
        raise ValueError(f"'{end}' without '{start}'")
    return text.rstrip("\n") + "\n\n" + block + "\n"


def section_finding(text: str, name: str) -> str | None:
    """The 'Finding:' paragraph a person wrote in a section (None if absent or the placeholder)."""
    start, end = markers(name)
    i = text.find(start)
    j = text.find(end, i + 1) if i >= 0 else -1
    if i < 0 or j < 0:
        return None
    paragraphs = text[i + len(start) : j].strip().split("\n\n")
    for para in paragraphs:
        para = para.strip()
        if para.startswith("Finding:") and para != FINDING_PLACEHOLDER:
            return para
    return None


def write_docs_section(path: Path, name: str, body: str) -> Path:
    """Replace the ``name`` section of the Markdown file ``path`` (created if missing)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, name, body), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- provenance


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, cores, torch threads, load, date and versions: what a reader needs to judge a time."""
    import torch

    from t2i_stages.evaluation.report import versions

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1_5_15": load,
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions(),
        "env": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "T2I_STAGES_HOME") if k in os.environ
        },
    }


def machine_line(info: dict[str, Any]) -> str:
    """One sentence describing the machine, for a docs section."""
    v = info.get("versions", {})
    vers = ", ".join(f"{k} {v[k]}" for k in ("python", "t2i-stages", "torch", "numpy") if k in v)
    load = info.get("load_average_1_5_15")
    gpu = f", GPU {info['cuda']} (unused unless --device cuda)" if info.get("cuda") else ""
    return (
        f"Machine: {info['cpu']}, {info['usable_cores']} usable of {info['logical_cores']} logical "
        f"cores{gpu}, {info['torch_threads']} torch thread(s); load average at the start "
        f"{load[0] if load else 'n/a'} (1 min). Date: {info['date_utc']}. Versions: {vers}."
    )


def command_line(script: str, argv: Sequence[str]) -> str:
    """The exact command that reruns this benchmark (with the environment that matters)."""
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in ("OMP_NUM_THREADS",) if k in os.environ]
    return " ".join([*env, ".venv/bin/python", f"benchmarks/{script}", *map(shlex.quote, argv)])


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a crash never leaves half a results file that resume would trust)."""
    from t2i_stages.evaluation.report import json_default

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(clean_json(data), indent=2, default=json_default, allow_nan=False)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def clean_json(v: Any) -> Any:
    """NaN and infinities -> None, so the files are strict JSON (a missing number reads null)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: clean_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [clean_json(x) for x in v]
    return v
