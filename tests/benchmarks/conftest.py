"""The benchmark scripts are plain files in benchmarks/, not a package: their folder goes on
``sys.path`` here (before the test modules import them), as it is when a script runs."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
