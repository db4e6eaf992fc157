"""What a wheel of t2i-stages holds beyond Python modules: the built-in recipes (so that
``builtin:NAME`` works from a normal install) and the scaffold's templates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
import t2i_stages
from t2i_stages.recipe import read_recipe
from t2i_stages.scaffold import template
assert t2i_stages.__file__.startswith(sys.argv[1]), t2i_stages.__file__
rs = read_recipe("builtin:dmgan.yaml")
assert rs.data["name"] == "dmgan" and rs.data["seed"] == 0  # seed from base/shapes-demo.yaml
assert "check_fit" in template("stage.py").template
print("ok")
"""


def test_a_wheel_ships_the_built_in_recipes_and_the_scaffold_templates(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    for name in ("t2i_stages", "plugins", "export", "serve", "recipes"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q"]
    done = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("t2i_stages-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "t2i_stages/recipes/dmgan.yaml",
        "t2i_stages/recipes/base/shapes-demo.yaml",
        "t2i_stages/recipes/coco/grgan.yaml",
        "t2i_stages/scaffold/templates/stage.py.tmpl",
        "t2i_stages/plugin.py",
        "t2i_stages/serve/app.py",
        "t2i_stages/serve/static/index.html",  # the page at / of `t2i-stages serve`
        "t2i_stages/serve/static/app.js",
        "t2i_stages/serve/static/style.css",
    } <= names
    site = tmp_path / "site"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
