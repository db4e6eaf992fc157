"""The pure helpers of benchmarks/cpu_step.py (issue 22): which overrides each switch sets on
the COCO recipes, the configurations, the interleaving order, the paired speed-ups, the table."""

from __future__ import annotations

from pathlib import Path

import cpu_step as cs  # benchmarks/ is on sys.path (conftest.py)
import pytest

from t2i_stages.recipe import read_recipe

REPO = Path(__file__).resolve().parents[2]


def _coco(name: str) -> dict:
    return read_recipe(REPO / "recipes" / "coco" / f"{name}.yaml", []).data


def test_switches_reach_the_fusion_stages_and_the_spectral_ds_of_the_coco_recipes():
    for name in ("dmgan", "grgan"):
        data = _coco(name)
        assert cs.switch_overrides("sdpa", data) == [
            "generator.params.stages.1.params.fusion.params.sdpa=true",
            "generator.params.stages.2.params.fusion.params.sdpa=true",
        ]
        assert cs.switch_overrides("batched_power_iteration", data) == [
            f"discriminators.{i}.params.batched_power_iteration=true" for i in range(3)
        ]
    assert cs.switch_overrides("text_cache", {}) == ["train.text_cache=true"]
    assert cs.switch_overrides("bf16", {}) == ["train.precision=bf16"]
    attngan = _coco("attngan")  # batch-norm Ds: nothing for the power iteration to act on
    assert cs.switch_overrides("batched_power_iteration", attngan) == []
    with pytest.raises(ValueError, match="unknown switch 'fast'"):
        cs.switch_overrides("fast", {})


def test_the_overrides_make_a_valid_recipe():
    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry

    data = _coco("dmgan")
    ov = [o for s in cs.SWITCHES for o in cs.switch_overrides(s, data)]
    recipe = load_recipe(REPO / "recipes" / "coco" / "dmgan.yaml", ov, load_registry())
    assert recipe.train.text_cache and recipe.train.merge_d_optimizers
    stage = recipe.generator.params["stages"][2]["params"]["fusion"]
    assert stage["params"]["sdpa"] is True


def test_configurations_are_plain_each_switch_and_all_with_bf16_only_where_native():
    data = _coco("grgan")
    names = [n for n, _ in cs.configurations(cs.SWITCHES, data, bf16_native=False)]
    assert names[0] == "plain" and names[-1] == "all" and "bf16" not in names
    assert set(names[1:-1]) == set(cs.SWITCHES) - {"bf16"}
    confs = dict(cs.configurations(cs.SWITCHES, data, bf16_native=True))
    assert "train.precision=bf16" in confs["all"] and confs["plain"] == []
    assert [n for n, _ in cs.configurations(["text_cache"], data, False)] == ["plain", "text_cache"]


def test_round_order_rotates_so_that_none_always_goes_first():
    names = ["plain", "a", "b"]
    assert [cs.round_order(names, r)[0] for r in range(4)] == ["plain", "a", "b", "plain"]
    assert sorted(cs.round_order(names, 2)) == sorted(names)


def test_speed_up_is_the_median_of_paired_ratios_and_skips_failed_rounds():
    times = {"plain": [1.0, 2.0, 1.0], "x": [0.5, 1.0, None], "y": [2.0, 2.0, 2.0]}
    s = cs.summarize(times)
    assert s["plain"]["speedup"] == 1.0 and s["plain"]["s_per_step"] == 1.0
    assert s["x"]["speedup"] == 2.0 and s["x"]["rounds"] == 2 and s["x"]["s_per_step"] == 0.75
    assert s["y"]["speedup"] == 0.5


def test_table_shows_errors_and_cache_hits():
    rows = [
        {"recipe": "r", "batch": 2, "config": "plain", "s_per_step": 1.5, "speedup": 1.0},
        {"recipe": "r", "batch": 2, "config": "text_cache", "s_per_step": 1.2, "speedup": 1.25,
         "text_cache_hit_rate": 1.0},
        {"recipe": "r", "batch": 2, "config": "compile", "error": "RuntimeError: no compiler"},
    ]  # fmt: skip
    text = cs.table(rows)
    assert "| r | 2 | text_cache | 1.20 | 1.25x | 100% |" in text
    assert "error: RuntimeError: no compiler" in text
