"""Shared helpers of the reliability tests (a module of its own: importing ``conftest``
by name is ambiguous when several test folders have one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent.parent
MICRO = REPO / "tests" / "training" / "micro.yaml"
QUIET = {
    "log": lambda *a, **k: None,
    "evaluate": False,
    "device": "cpu",
}  # the promises are CPU ones


def write_dist(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """A fake installed distribution: a dist-info folder whose entry points name our modules."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[t2i_stages]\n{eps}\n")


def cli_env(*extra_paths: Path) -> dict[str, str]:
    """Environment for a CLI subprocess: one thread, the session's cache, extra sys.path."""
    env = os.environ.copy()
    paths = [str(p) for p in extra_paths] + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def run_cli(args: list[str], env=None, **kw) -> subprocess.Popen:
    """Start ``python -m t2i_stages.cli.main ARGS`` (stdout+stderr to a pipe)."""
    return subprocess.Popen(
        [sys.executable, "-m", "t2i_stages.cli.main", *args],
        cwd=REPO,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )
