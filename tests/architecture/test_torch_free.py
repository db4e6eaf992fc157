"""The commands that need no torch import none (issue 18, point 10): `plugins`, `schema`,
`validate` and `env` run with torch blocked; `generate --onnx` is pinned the same way in
tests/export/test_export_runtime.py. A blocked import that the code swallowed (a plugin that
"failed to load", say) still fails here: the blocker records every attempt."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
HEAVY = ("torch", "torchvision", "transformers", "cleanfid", "onnx", "onnxruntime")

_SCRIPT = """
import importlib.abc, json, sys
BLOCKED, tried = {blocked!r}, []
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            tried.append(name)
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, _Block())
from t2i_stages.cli.main import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
print("\\n@@" + json.dumps({{"code": code, "tried": sorted(set(tried))}}))
"""


def run_blocked(argv: list[str], blocked=HEAVY, cwd: Path = ROOT) -> tuple[int, list[str], str]:
    """Run the CLI with ``blocked`` packages unimportable: exit code, blocked imports tried,
    and the output (stdout then stderr)."""
    script = textwrap.dedent(_SCRIPT.format(blocked=blocked, argv=argv))
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    out, _, tail = proc.stdout.rpartition("\n@@")
    assert tail, f"the command crashed: {proc.stderr[-2000:]}"
    info = json.loads(tail)
    return info["code"], info["tried"], out + proc.stderr


def test_plugins_lists_every_component_and_its_params_without_torch():
    from t2i_stages.cli.plugins import plugin_rows
    from t2i_stages.registry import load_registry

    code, tried, out = run_blocked(["plugins", "--params"])
    assert (code, tried) == (0, []), out[-2000:]
    assert "warning" not in out  # no built-in plugin "failed to load" for want of torch
    for row in plugin_rows(load_registry()):
        assert f"{row['kind']}" in out and f" {row['name']} " in out
    code, tried, out = run_blocked(["plugins", "refine"])
    assert (code, tried) == (0, []) and "residual_blocks" in out


def test_plugins_check_imports_the_factories_and_fails_without_torch():
    """--check is what a plugin's CI runs: it imports what a build would, so with torch
    blocked it must fail, naming the component and its factory."""
    code, tried, out = run_blocked(["plugins", "--check"], blocked=("torch",))
    assert code == 2 and "torch" in tried
    assert "error: generator 'stagewise' (plugin 'builtin-generators'): its factory" in out


def test_schema_without_torch(tmp_path):
    code, tried, out = run_blocked(["schema", "--out", str(tmp_path / "s.json")])
    assert (code, tried) == (0, []), out[-2000:]
    assert "StagewiseGeneratorParams" in (tmp_path / "s.json").read_text()


@pytest.mark.parametrize("name", ["grgan", "attngan", "dmgan", "dfgan"])
def test_validate_checks_every_phase_without_torch(name):
    code, tried, out = run_blocked(["validate", str(RECIPES / f"{name}.yaml")])
    assert (code, tried) == (0, []), out[-2000:]
    assert f"ok ({name})" in out


def test_validate_reports_phase_three_problems_with_their_lines_without_torch(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"extends: {RECIPES / 'grgan.yaml'}\nname: bad\n"
        "discriminators:\n  - type: stagewise\n  - type: stagewise\n"
        "losses:\n  - type: ca_kl\n"
    )
    code, tried, out = run_blocked(["validate", str(bad)])
    assert (code, tried) == (2, []), out[-2000:]
    assert f"{bad}:3: discriminators: 2 given for 3 generator stages [8, 16, 32]" in out
    assert f"{bad}:6: losses: the recipe names no adversarial loss" in out


def test_env_reports_what_it_can_without_torch():
    """ONNX Runtime stays importable: on a serving machine it is what env reports."""
    code, tried, out = run_blocked(["env", "--json"], blocked=("torch",))
    assert code == 0 and tried == ["torch"]  # it asks once, and says so
    env = json.loads(out[: out.rindex("}") + 1])
    assert env["torch"] == {
        "available": False,
        "error": "ImportError: torch is blocked in this test",
    }
    assert env["cpu"]["model"] is not None and "avx2" in env["cpu"]["flags"]
    assert env["precision_auto"] == {} and env["onnxruntime"]["available"]
    code, tried, out = run_blocked(["env"], blocked=("torch",))
    assert code == 0 and "torch sees:  unknown: torch is not importable" in out
