"""The study every launcher runs in the launcher tests, and what they read back from it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

# A 2-variant x 2-seed study that every launcher runs: its per-run metrics must not depend on
# where the runs went (tests/ablation/test_launch_*.py).
PARITY = """name: parity
seeds: [0, 1]
metrics: ['FD[matcher]', 'R-precision[run]']
variants:
  - name: base
  - name: attention
    set: [generator.params.stages.1.params.fusion.type=word_attention]
"""
PARITY_RUNS = ["base/seed-0", "attention/seed-0", "base/seed-1", "attention/seed-1"]


@contextlib.contextmanager
def one_run_thread():
    """Runs in this process at one torch thread, as each of the launchers' runs below gets."""
    old = os.environ.get("T2I_STAGES_THREADS")
    os.environ["T2I_STAGES_THREADS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("T2I_STAGES_THREADS", None)
        else:
            os.environ["T2I_STAGES_THREADS"] = old


def run_values(study: Path) -> dict[str, dict]:
    """Every run's metric values (not their timings), by run key."""
    out = {}
    for key in PARITY_RUNS:
        report = json.loads((study / key / "metrics.json").read_text(encoding="utf-8"))
        out[key] = {name: entry["values"] for name, entry in report["results"].items()}
    return out


def launch_record(study: Path, key: str) -> dict:
    return json.loads((study / key / "launch.json").read_text(encoding="utf-8"))


def wait_for(predicate, timeout: float = 300.0, every: float = 0.05):
    """Poll until ``predicate()`` is truthy; its value, or None after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None
