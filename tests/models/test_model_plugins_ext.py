"""A fusion block and a refinement stage from a separate package plug into a recipe.

The package is ``ext_site/``: a module plus a dist-info folder whose entry_points.txt names it
in the ``t2i_stages`` group. Putting the folder on sys.path is all the "installation" there is.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
from model_helpers import random_text

from t2i_stages.cli.main import main
from t2i_stages.errors import RecipeError
from t2i_stages.registry import load_registry
from t2i_stages.summary import load_model_recipe, summarize

SITE = Path(__file__).parent / "ext_site"

RECIPE = """\
name: ext-models
data:
  dataset: {type: coco, params: {root: data/coco}}
generator:
  type: stagewise
  params:
    text_dim: 16
    z_dim: 8
    gf: 4
    stages:
      - type: initial
        params: {conditioning: {type: ca, params: {c_dim: 6}}, upsamples: 2}
      - type: refine
        params: {fusion: {type: gated_sum, params: {gate_bias: 1.0}}, residual_blocks: 1}
      - type: refine_lite
        params: {conditioning: {type: sentence_tiled}}
discriminators:
  - {type: stagewise, params: {df: 4, text_dim: 16}}
  - {type: stagewise, params: {df: 4, text_dim: 16}}
  - {type: stagewise, params: {df: 4, text_dim: 16}}
"""


@pytest.fixture
def ext_installed(monkeypatch):
    monkeypatch.syspath_prepend(str(SITE))
    for var in ("T2I_STAGES_DISABLE_PLUGINS", "T2I_STAGES_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    importlib.invalidate_caches()
    yield
    sys.modules.pop("t2i_ext_models", None)


def test_external_components_are_registered(ext_installed):
    reg = load_registry()
    fusion = reg.get("fusion", "gated_sum")
    assert fusion.plugin.package == "t2i-ext-models" and not fusion.plugin.builtin
    assert reg.get("stage", "refine_lite").plugin.name == "ext-models"
    assert "word_attention" in reg.names("fusion")  # built-ins still there


def test_external_blocks_build_and_run_in_a_recipe(ext_installed, tmp_path):
    path = tmp_path / "ext.yaml"
    path.write_text(RECIPE)
    reg = load_registry()
    recipe = load_model_recipe(path, registry=reg)
    g = reg.build("generator", recipe.generator)
    assert type(g.stages[1].fusion).__name__ == "GatedSum"
    assert type(g.stages[2]).__name__ == "RefineLite"
    out = g(torch.randn(2, 8), torch.randn(2, g.eps_dim), random_text(lengths=[7, 2]))
    assert [tuple(i.shape) for i in out.images] == [(2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 64, 64)]
    assert out.attention == [None, None]
    table = summarize(recipe, reg)
    assert table.params_of("generator") == sum(p.numel() for p in g.parameters())
    assert [r.plugin for r in table.rows if r.component == "fusion"] == ["gated_sum", "gated_sum"]


def test_external_params_are_validated_with_lines(ext_installed, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(RECIPE.replace("gate_bias: 1.0", "gate_bais: 1.0"))
    with pytest.raises(RecipeError) as err:
        load_model_recipe(path)
    assert "bad.yaml:14: generator.params.stages.1.params.fusion.params.gate_bais" in str(err.value)


def test_summary_cli_with_external_plugin(ext_installed, tmp_path, capsys):
    path = tmp_path / "ext.yaml"
    path.write_text(RECIPE)
    assert main(["summary", str(path)]) == 0
    assert "refine_lite" in capsys.readouterr().out
