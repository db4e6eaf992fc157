"""`t2i-stages new-plugin`: the scaffolded package works as generated, for every kind."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import torch

from t2i_stages.cli.main import main
from t2i_stages.cli.new_plugin import KINDS, names_for, scaffold_plugin
from t2i_stages.errors import T2IError
from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry


@pytest.mark.parametrize("kind", KINDS)
def test_scaffolded_component_registers_validates_and_runs(kind, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    name = f"my-{kind}-block"
    root = scaffold_plugin(name, kind, tmp_path / "pkg")
    n = names_for(name)
    monkeypatch.syspath_prepend(str(root / "src"))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(n["module"])
        reg = load_registry(plugins=[(n["entry"], module)])
        assert reg.get(kind, n["component"]).plugin.name == n["entry"]
        recipe = load_recipe(root / "src" / n["module"] / "recipes" / "demo.yaml", [], reg)
        gen = reg.build("generator", recipe.generator)
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
        text = (torch.randn(2, 64, 5), torch.randn(2, 64), mask, mask.sum(1))  # dmgan.yaml: 64
        from t2i_stages.types import TextFeatures

        out = gen(torch.randn(2, gen.z_dim), torch.randn(2, gen.eps_dim), TextFeatures(*text))
        assert out.images[-1].shape == (2, 3, 32, 32)
        assert torch.isfinite(out.images[-1]).all()
    finally:
        for mod in [m for m in sys.modules if m == n["module"] or m.startswith(n["module"] + ".")]:
            sys.modules.pop(mod)
    text = (root / "pyproject.toml").read_text()
    assert f'{n["entry"]} = "{n["module"]}"' in text and "[project.entry-points.t2i_stages]" in text


def test_the_scaffold_installs_with_pip_and_its_tests_pass(tmp_path):
    assert (
        main(["new-plugin", "gated-block", "--kind", "fusion", "--out", str(tmp_path / "p")]) == 0
    )
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, "--target", str(target), str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
        + ["--rootdir", str(tmp_path / "p"), str(tmp_path / "p" / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 passed" in done.stdout


def test_bad_names_and_existing_folders_are_refused(tmp_path, capsys):
    with pytest.raises(T2IError, match="not a usable name"):
        scaffold_plugin("Bad Name", "fusion", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["new-plugin", "ok-name", "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
