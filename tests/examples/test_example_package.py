"""The example plugin package, installed with pip, plugs into t2i-stages and trains.

The package is pip-installed (no dependencies, no build isolation: offline) into a private
folder that the subprocesses below put on PYTHONPATH, so the test neither needs nor changes an
installation in the environment, and the entry point is found exactly as for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "examples" / "t2i-stages-example-plugin"
RECIPE = PACKAGE / "src" / "t2i_example_plugin" / "recipes" / "gated-shapes.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """pip install the example package into a private folder; returns that folder."""
    work = tmp_path_factory.mktemp("example-plugin")
    src = work / "src"
    shutil.copytree(
        PACKAGE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = work / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*cmd, "--target", str(target), str(src)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert (target / "t2i_stages_example_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def _run(
    site: Path, *args: str, timeout: int = 300, home: Path | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    if home is not None:
        env["T2I_STAGES_HOME"] = str(home)
    env.pop("T2I_STAGES_LOAD_PLUGINS", None)
    env.pop("T2I_STAGES_DISABLE_PLUGINS", None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def test_installed_components_appear_in_the_plugins_command(site):
    done = _run(site, "-m", "t2i_stages.cli.main", "plugins", "--kind", "fusion")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "gated_cross_attention" in x)
    assert "t2i-stages-example-plugin" in line and "0.1.0" in line
    done = _run(site, "-m", "t2i_stages.cli.main", "plugins", "--kind", "stage")
    assert "gated_refine" in done.stdout
    # without the package on the path they are gone: nothing in the core names them
    bare = subprocess.run(
        [sys.executable, "-m", "t2i_stages.cli.main", "plugins", "--kind", "fusion"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "gated_cross_attention" not in bare.stdout


def test_a_recipe_using_the_plugin_trains_a_few_steps(site, tmp_path):
    out = tmp_path / "run"
    home = tmp_path / "home"
    sets = [
        "data.dataset.params.train_size=48",
        "data.dataset.params.test_size=16",
        "data.batch_size=8",
        "matcher.params.pretrain.steps=3",
        "matcher.params.pretrain.eval_samples=16",
        "matcher.params.pretrain.batch_size=8",
        "train.max_steps=3",
        "train.max_minutes=null",
        "train.log_every=1",
        "eval.num_samples=16",
        "eval.batch_size=16",
        "eval.attribute_accuracy=false",
    ]
    args = ["-m", "t2i_stages.cli.main", "run", str(RECIPE), "--out", str(out)]
    done = _run(site, *args, *[a for s in sets for a in ("--set", s)], home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    resolved = (out / "recipe.resolved.yaml").read_text()
    assert "gated_cross_attention" in resolved and "t2i-stages-example-plugin" in resolved
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history and max(h.get("step", 0) for h in history) == 3
    assert json.loads((out / "metrics.json").read_text())["results"]


def test_the_packages_own_tests_pass(site):
    done = _run(
        site,
        "-m",
        "pytest",
        "-q",
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(PACKAGE),
        str(PACKAGE / "tests"),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "6 passed" in done.stdout
