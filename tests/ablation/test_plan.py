"""Ablation files and plans: schema errors, overrides and removals, up-front validation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from t2i_stages.ablation import (
    AblationError,
    diff_paths,
    override_roots,
    plan_ablation,
    read_ablation,
    remove_paths,
    unexplained_differences,
)
from t2i_stages.ablation.spec import MetricSpec, Variant
from t2i_stages.cli.main import main

GOOD = """\
name: study
set: [train.max_steps=1]
seeds: [0, 1]
variants:
  - name: base
  - name: attention
    set: [generator.params.stages.1.params.fusion.type=word_attention]
  - name: no-words
    unset: [losses.3]
"""


def test_plan_validates_every_variant_and_seed(write_ablation, registry, tmp_path):
    plan = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=tmp_path / "out")
    assert [(r.variant.name, r.seed) for r in plan.runs] == [
        ("base", 0),
        ("attention", 0),
        ("no-words", 0),
        ("base", 1),
        ("attention", 1),
        ("no-words", 1),
    ]
    assert {r.status for r in plan.runs} == {"new"}
    by = {(r.variant.name, r.seed): r for r in plan.runs}
    assert by[("base", 1)].recipe.seed == 1 and by[("attention", 0)].recipe.seed == 0
    assert by[("attention", 0)].recipe.generator.params["stages"][1]["params"]["fusion"] == {
        "type": "word_attention"
    }
    assert [s.type for s in by[("no-words", 0)].recipe.losses] == [
        "bce_mismatch",
        "ca_kl",
        "sentence_matching",
    ]
    assert all(r.recipe.train.max_steps == 1 for r in plan.runs)
    assert plan.out == tmp_path / "out"
    assert by[("attention", 1)].out == tmp_path / "out" / "attention" / "seed-1"
    # the differences from the reference are exactly where each variant's overrides point
    assert plan.differences["base"] == []
    assert "generator.params.stages.1.params.fusion.type" in plan.differences["attention"]
    assert all(
        d.startswith("generator.params.stages.1.params.fusion")
        for d in plan.differences["attention"]
    )
    assert plan.differences["no-words"] == ["losses"]


def test_an_invalid_last_variant_fails_before_anything_trains(write_ablation, registry, tmp_path):
    path = write_ablation(
        GOOD
        + "  - name: typo\n    set: [generator.params.stages.1.params.fusion.type=word_atention]\n"
    )
    with pytest.raises(AblationError) as err:
        plan_ablation(path, registry=registry, out_dir=tmp_path / "out")
    text = str(err.value)
    assert "variant 'typo' (seed 0)" in text and "did you mean 'word_attention'" in text
    assert len(text.splitlines()) == 1  # the typo is reported once, not once per seed
    # the CLI refuses it too, with exit code 2 and no run folder
    assert main(["ablate", str(path), "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()


def test_a_fusion_that_does_not_fit_its_conditioning_is_caught_by_the_build_check(
    write_ablation, registry, tmp_path
):
    path = write_ablation(
        "name: s\nvariants:\n  - name: base\n  - name: vector\n"
        "    set: [generator.params.stages.1.params.conditioning.type=sentence]\n"
    )
    with pytest.raises(AblationError, match="variant 'vector'.*needs a word sequence"):
        plan_ablation(path, registry=registry, out_dir=tmp_path / "out")


def test_a_variant_that_changes_the_budget_is_refused(write_ablation, registry, tmp_path):
    path = write_ablation(
        "name: s\nvariants:\n  - name: base\n  - name: longer\n    set: [train.max_steps=5]\n"
    )
    with pytest.raises(
        AblationError, match="variant 'longer': train.max_steps is 5 but the reference"
    ):
        plan_ablation(path, registry=registry, out_dir=tmp_path / "out")


def test_a_variant_that_changes_nothing_is_refused(write_ablation, registry, tmp_path):
    path = write_ablation(
        "name: s\nvariants:\n  - name: base\n  - name: same\n    set: [generator.params.gf=4]\n"
    )
    with pytest.raises(AblationError, match="'same' resolves to the same recipe"):
        plan_ablation(path, registry=registry, out_dir=tmp_path / "out")


def test_a_run_folder_from_another_recipe_is_refused(write_ablation, registry, tmp_path):
    out = tmp_path / "out"
    plan = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out)
    run = plan.runs[0]
    run.out.mkdir(parents=True)
    other = dict(run.resolved, generator={"type": "stagewise", "params": {"gf": 99}})
    (run.out / "recipe.resolved.yaml").write_text(json.dumps(other))
    with pytest.raises(AblationError, match="was trained with another recipe"):
        plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out)
    # the same recipe with another training budget resumes
    (run.out / "recipe.resolved.yaml").write_text(
        json.dumps(dict(run.resolved, train=dict(run.resolved["train"], max_steps=7)))
    )
    again = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out)
    assert again.runs[0].status == "resume" and again.runs[1].status == "new"


def test_a_finished_run_from_before_a_plugin_grew_a_field_stays_done(
    write_ablation, registry, tmp_path
):
    """A field added since the run, at its default, is the recipe it trained with: the run
    is neither refused nor retrained."""
    import copy
    import hashlib

    from t2i_stages.ablation.plan import MARKER
    from t2i_stages.ablation.report import read_run

    out = tmp_path / "out"
    run = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out).runs[0]
    before = copy.deepcopy(run.resolved)
    bce = next(x for x in before["losses"] if x["type"] == "bce_mismatch")
    del bce["params"]["r1_gamma"]  # as if r1_gamma did not exist yet when the run was made
    run.out.mkdir(parents=True)
    (run.out / "recipe.resolved.yaml").write_text(json.dumps(before))
    (run.out / "metrics.json").write_text("{}")
    stored_hash = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    (run.out / MARKER).write_text(json.dumps({"recipe_sha256": stored_hash}))
    done = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out).runs[0]
    assert done.status == "done"
    # and the comparison counts it: the report reads it with the hash the planner accepted
    (run.out / "metrics.json").write_text(json.dumps({"results": {"fid": {"values": {"FD": 1}}}}))
    assert read_run(done) is not None and read_run(done).results["fid"]["values"]["FD"] == 1
    # a marker from some other recipe still does not count as finished
    (run.out / MARKER).write_text(json.dumps({"recipe_sha256": "0" * 64}))
    again = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out)
    assert again.runs[0].status == "resume"
    # and a stored value that differs (not a missing one) is another recipe
    bce["params"]["r1_gamma"] = 0.5
    (run.out / "recipe.resolved.yaml").write_text(json.dumps(before))
    with pytest.raises(AblationError, match="differs at losses.0.params.r1_gamma"):
        plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out)


def test_a_finished_run_from_before_the_schema_grew_a_train_field_stays_done(
    write_ablation, registry, tmp_path
):
    """The same for a field of the recipe schema itself (train.lr_schedule came after runs
    whose records are committed): the train section is compared as today's schema reads it."""
    import copy
    import hashlib

    from t2i_stages.ablation.plan import MARKER

    out = tmp_path / "out"
    run = plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out).runs[0]
    before = copy.deepcopy(run.resolved)
    del before["train"]["lr_schedule"]
    run.out.mkdir(parents=True)
    (run.out / "recipe.resolved.yaml").write_text(json.dumps(before))
    (run.out / "metrics.json").write_text("{}")
    stored_hash = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    (run.out / MARKER).write_text(json.dumps({"recipe_sha256": stored_hash}))
    assert plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out).runs[0].status == (
        "done"
    )
    # a train value that differs is another budget: the run resumes, it is not done
    before["train"]["max_steps"] += 1
    (run.out / "recipe.resolved.yaml").write_text(json.dumps(before))
    assert plan_ablation(write_ablation(GOOD), registry=registry, out_dir=out).runs[0].status == (
        "resume"
    )


def test_narrowing_seeds_and_variants_keeps_the_reference(write_ablation, registry, tmp_path):
    plan = plan_ablation(
        write_ablation(GOOD), registry=registry, out_dir=tmp_path, seeds=[3], variants=["no-words"]
    )
    assert [(r.variant.name, r.seed) for r in plan.runs] == [("base", 3), ("no-words", 3)]
    with pytest.raises(AblationError, match="no variant named nope"):
        plan_ablation(write_ablation(GOOD), registry=registry, variants=["nope"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: s\nvariants: []\n", "variants: List should have at least 1 item"),
        ("name: s\nvariants:\n  - name: a\n  - name: a\n", "variant names must be distinct: a"),
        ("name: s\nvariants:\n  - {name: a, sett: []}\n", "variants.0.sett: unknown field"),
        ("name: s\nvariants:\n  - {name: a, set: [novalue]}\n", "expected KEY.PATH=VALUE"),
        ("name: s\nvariants:\n  - {name: a/b}\n", "is not a variant name"),
        ("name: s\nreference: z\nvariants:\n  - {name: a}\n", "reference 'z' is not a variant"),
        ("name: s\nseeds: [1, 1]\nvariants:\n  - {name: a}\n", "seeds must be distinct"),
        ("name: s\nvariants:\n  - {name: a, unset: [losses..1]}\n", "is not a dotted path"),
        (
            "name: s\nvariants:\n  - {name: a}\nclaims:\n  - {a: a, b: z}\n",
            "claims.0: 'z' is not a variant (a)",
        ),
        (
            "name: s\nvariants:\n  - {name: a}\n  - {name: b}\nclaims:\n  - {a: a, b: a}\n",
            "claims.0: compares 'a' with itself",
        ),
        (
            "name: s\nmetrics: [FD]\nvariants:\n  - {name: a}\n  - {name: b}\n"
            "claims:\n  - {a: a, b: b, metrics: [CMD]}\n",
            "claims.0: CMD not among the metrics (FD)",
        ),
        ("name: s\nvariants:\n  - {name: a, base: nowhere.yaml}\n", "variant 'a': base: recipe"),
    ],
)
def test_ablation_file_errors_name_the_field(write_ablation, body, message):
    with pytest.raises(AblationError, match=re.escape(message)):
        read_ablation(write_ablation(body))


def test_unset_of_a_missing_path_names_it(write_ablation, registry):
    path = write_ablation("name: s\nvariants:\n  - name: a\n  - {name: b, unset: [losses.9]}\n")
    with pytest.raises(
        AblationError, match=r"variant 'b'.*unset losses.9: losses.9 does not exist"
    ):
        plan_ablation(path, registry=registry)


def test_remove_paths_uses_the_original_indices():
    data = {"losses": ["a", "b", "c", "d", "e"], "x": {"y": 1, "z": 2}}
    remove_paths(data, ["losses.1", "losses.3", "x.y"], "t")
    assert data == {"losses": ["a", "c", "e"], "x": {"z": 2}}
    with pytest.raises(AblationError, match="named twice"):
        remove_paths({"l": [1, 2]}, ["l.0", "l.0"], "t")


def test_diff_paths_and_override_roots():
    a = {"g": {"stages": [{"fusion": {"type": "dm", "params": {"k": 1}}}]}, "losses": [1, 2]}
    b = {"g": {"stages": [{"fusion": {"type": "wa", "params": {"j": 1}}}]}, "losses": [1]}
    assert diff_paths(a, b) == [
        ("g", "stages", 0, "fusion", "type"),
        ("g", "stages", 0, "fusion", "params", "k"),
        ("g", "stages", 0, "fusion", "params", "j"),
        ("losses",),
    ]
    v = Variant(name="v", set=["g.stages.0.fusion.type=wa"], unset=["losses.1"])
    assert override_roots(v) == [("g", "stages", 0, "fusion"), ("losses",)]
    assert unexplained_differences(a, b, override_roots(v)) == []
    assert unexplained_differences(a, b, [("losses",)]) == diff_paths(a, b)[:3]


def test_metric_direction_comes_from_the_file_or_the_metric_never_from_the_name(tmp_path):
    from t2i_stages.ablation.report import RunResult, with_directions
    from t2i_stages.evaluation import MetricResult

    fid = MetricResult({"FD[matcher]": 2.0}, better="lower").as_dict()
    mine = MetricResult({"score": 1.0, "fd_like": 3.0}).as_dict()  # declares nothing
    assert fid["better"] == {"FD[matcher]": "lower"} and "better" not in mine
    results = [RunResult("base", 0, tmp_path, 1, {"fid": fid, "mine": mine})]
    specs = [
        MetricSpec(name="FD[matcher]"),
        MetricSpec(name="score"),
        MetricSpec(name="fd_like"),  # looks like a distance: still neutral, no guess
        MetricSpec(name="mine/score", better="lower"),  # the ablation file wins
        MetricSpec(name="fid/FD[matcher]", better="neutral"),
    ]
    assert [m.direction for m in with_directions(specs, results)] == [
        "lower",
        "neutral",
        "neutral",
        "lower",
        "neutral",
    ]


def test_a_metric_declares_its_direction_per_value_or_for_all():
    from t2i_stages.errors import T2IError
    from t2i_stages.evaluation import MetricResult

    per = MetricResult({"a": 1.0, "b": 2.0}, better={"a": "higher"})
    assert per.direction("a") == "higher" and per.direction("b") == "neutral"
    assert MetricResult({"a": 1.0, "b": 2.0}, better="higher").as_dict()["better"] == {
        "a": "higher",
        "b": "higher",
    }
    with pytest.raises(T2IError, match="'up' is not one of higher, lower, neutral"):
        MetricResult({"a": 1.0}, better="up")


def test_plan_command_lists_runs_and_differences(write_ablation, capsys, tmp_path):
    assert main(["ablate", str(write_ablation(GOOD)), "--plan", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "6 runs" in out and "base (reference)" in out
    assert "resolved recipe differs at: losses" in out
    assert not (tmp_path / "o").exists()  # planning writes nothing


def test_an_ablation_base_may_be_a_built_in_recipe(registry, tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: s\nbase: builtin:dmgan.yaml\nseeds: [0]\nvariants:\n  - name: a\n",
        encoding="utf-8",
    )
    plan = plan_ablation(path, registry=registry, out_dir=tmp_path / "out")
    assert plan.base.parts[-2:] == ("recipes", "dmgan.yaml")
    assert plan.runs[0].recipe.name == "dmgan"
    path.write_text(path.read_text().replace("dmgan.yaml", "dmgna.yaml"), encoding="utf-8")
    with pytest.raises(AblationError, match=r"study.yaml: base: no built-in recipe 'dmgna.yaml'"):
        read_ablation(path)


@pytest.mark.parametrize(
    "study",
    sorted((Path(__file__).resolve().parents[2] / "recipes" / "ablations").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_every_shipped_ablation_plans(study, registry, tmp_path):
    """Each study in recipes/ablations validates every variant and seed up front."""
    plan = plan_ablation(study, registry=registry, out_dir=tmp_path / "out")
    spec, _ = read_ablation(study)
    assert len(plan.runs) == len(spec.variants) * len(spec.seeds)
    assert {r.status for r in plan.runs} == {"new"}


def test_a_variant_may_start_from_a_recipe_of_its_own(registry, tmp_path):
    """A family comparison: each variant is a family's recipe; the shared set still applies."""
    path = tmp_path / "families.yaml"
    path.write_text(
        "name: families\nbase: builtin:grgan.yaml\nset: [train.max_steps=7]\nseeds: [0, 1]\n"
        "variants:\n  - name: grgan\n  - {name: dmgan, base: builtin:dmgan.yaml}\n"
        "  - {name: attngan, base: builtin:attngan.yaml}\n"
        "claims:\n  - {a: grgan, b: dmgan}\n  - {a: dmgan, b: attngan}\n",
        encoding="utf-8",
    )
    plan = plan_ablation(path, registry=registry, out_dir=tmp_path / "out")
    names = {(r.variant.name, r.seed): r.recipe.name for r in plan.runs}
    assert names == {
        ("grgan", 0): "grgan", ("grgan", 1): "grgan",
        ("dmgan", 0): "dmgan", ("dmgan", 1): "dmgan",
        ("attngan", 0): "attngan", ("attngan", 1): "attngan",
    }  # fmt: skip
    assert {r.resolved["train"]["max_steps"] for r in plan.runs} == {7}
    assert any(d.startswith("generator") for d in plan.differences["dmgan"])
    # a worker rebuilding one run from the file gets the variant's own recipe
    from t2i_stages.ablation.plan import replan_run

    again = replan_run(path, [], tmp_path / "out", "dmgan", 1, registry)
    assert again.recipe.name == "dmgan" and again.resolved == next(
        r.resolved for r in plan.runs if (r.variant.name, r.seed) == ("dmgan", 1)
    )
