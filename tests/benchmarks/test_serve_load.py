"""The pure parts of benchmarks/serve_load.py: the percentile and the docs section's findings."""

from __future__ import annotations

import numpy as np
import pytest
import serve_load as sl  # benchmarks/ is on sys.path (conftest.py)


def test_percentile_matches_numpys_linear_rule():
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 1.4]
    for q in (0, 37, 50, 99, 100):
        assert sl.percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)


def _row(mode: str, c: int, rps: float, p99: float) -> dict:
    return {"mode": mode, "concurrency": c, "requests": 64, "rps": rps, "p50_ms": p99 / 2,
            "p99_ms": p99, "rows_per_call": 1.0}  # fmt: skip


def test_the_section_states_the_ratios_against_the_goals():
    result = {
        "provider": "cpu",
        "threads": 2,
        "machine": {"cpu": "X", "usable_cores": 2, "logical_cores": 2, "torch_threads": 2,
                    "load_average_1_5_15": [3.5, 3, 3], "date_utc": "today", "versions": {}},
        "load_average_end": [4.0, 3, 3],
        "models": {"demo": {"description": "d", "bare": {"p50_ms": 9.0, "p99_ms": 10.0}, "rows": [
            _row("batched", 1, 50, 12.0), _row("batched", 32, 400, 90.0),
            _row("unbatched", 1, 60, 11.0), _row("unbatched", 32, 100, 300.0),
            _row("greedy", 1, 70, 10.5), _row("greedy", 32, 250, 120.0)]}},
    }  # fmt: skip
    md = sl.to_markdown("demo", result, ["--models", "demo"])
    assert "| batched | 32 | 64 | 400.00 | 45.0 | 90.0 | 1.0 |" in md
    assert "Batched at concurrency 32: **4.00x**" in md
    assert "Greedy at concurrency 32: **2.50x**" in md
    assert "Greedy p99 at concurrency 1: **1.05x** the bare p99" in md
    assert "Batched p99 at concurrency 1: **1.20x** the bare p99" in md
    assert "Unbatched p99 at concurrency 1: **1.10x**" in md
    assert "load average at the start 3.5" in md and "Load average at the end 4.0" in md
