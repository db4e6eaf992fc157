"""Recipe loading: extends, --set, two-phase validation, and file:line error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from core_recipes import TOY_RECIPE

from t2i_stages.errors import RecipeError
from t2i_stages.recipe import load_recipe, read_recipe, resolved_recipe
from t2i_stages.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]


def errors_of(path, overrides=()):
    with pytest.raises(RecipeError) as err:
        load_recipe(path, overrides, load_registry())
    return err.value.lines


def test_valid_recipe_resolves_nested_slots(toy, write):
    recipe = load_recipe(write("r.yaml", TOY_RECIPE), registry=load_registry())
    stage = recipe.generator.resolved.stages[1]
    assert stage.resolved.channels == 16
    assert stage.resolved.fusion.resolved.heads == 2
    assert recipe.generator.resolved.stages[0].resolved.fusion is None
    assert recipe.losses[0].weight == 2.0 and recipe.losses[0].stages == [1]


def test_resolved_recipe_fills_defaults_and_records_plugin_versions(toy, write):
    registry = load_registry()
    recipe = load_recipe(write("r.yaml", TOY_RECIPE), registry=registry)
    data = resolved_recipe(recipe, registry)
    assert data["generator"]["params"]["stages"][0]["params"] == {"channels": 4, "fusion": None}
    assert data["plugins"]["fusion/toy_fusion"] == {
        "plugin": "acme",
        "package": "acme-t2i",
        "version": "0.1",
    }


def test_extends_deep_merges_and_replaces_lists(toy, write):
    write("base.yaml", TOY_RECIPE)
    child = write(
        "child.yaml",
        """
        extends: base.yaml
        name: child
        generator:
          params:
            width: 32
        losses:
          - type: toy_loss
        """,
    )
    recipe = load_recipe(child, registry=load_registry())
    assert recipe.name == "child"
    assert recipe.generator.resolved.width == 32
    assert len(recipe.generator.resolved.stages) == 2  # inherited
    assert [x.weight for x in recipe.losses] == [1.0]  # lists replace, never concatenate


def test_set_overrides_any_field_with_yaml_values(toy, write):
    path = write("r.yaml", TOY_RECIPE)
    recipe = load_recipe(
        path,
        [
            "train.max_steps=3",
            "generator.params.stages.1.params.fusion.type=toy_gate",
            "losses.0.stages=[0, 1]",
            "train.precision=bf16",
        ],
        load_registry(),
    )
    assert recipe.train.max_steps == 3
    assert recipe.generator.resolved.stages[1].resolved.fusion.type == "toy_gate"
    assert recipe.losses[0].stages == [0, 1]
    assert recipe.train.precision == "bf16"


def test_typo_in_nested_plugin_param_points_at_its_line(toy, write):
    text = TOY_RECIPE.replace("heads: 2", "haeds: 2")
    path = write("r.yaml", text)
    line = text.lstrip("\n").splitlines().index("              haeds: 2") + 1
    (msg,) = errors_of(path)
    assert msg == (
        f"{path}:{line}: generator.params.stages.1.params.fusion.params.haeds: "
        "unknown field (not allowed here); did you mean 'heads'?"
    )


def test_unknown_recipe_fields_get_the_closest_field_name_or_none(toy, write):
    text = TOY_RECIPE.replace("name: toy", "name: toy\nsede: 0").replace(
        "  max_steps: 10", "  max_stpes: 10\n  zzzz: 1"
    )
    path = write("r.yaml", text)
    line = text.lstrip("\n").splitlines().index
    assert sorted(errors_of(path)) == sorted(
        [
            f"{path}:{line('sede: 0') + 1}: sede: unknown field (not allowed here); did you mean 'seed'?",
            f"{path}:{line('  max_stpes: 10') + 1}: train.max_stpes: unknown field (not allowed here); "
            "did you mean 'max_steps'?",
            f"{path}:{line('  zzzz: 1') + 1}: train.zzzz: unknown field (not allowed here)",
        ]
    )


def test_unknown_plugin_gets_a_suggestion_and_the_known_names(toy, write):
    text = TOY_RECIPE.replace("type: toy_fusion", "type: toy_fusoin")
    path = write("r.yaml", text)
    line = text.lstrip("\n").splitlines().index("            type: toy_fusoin") + 1
    (msg,) = errors_of(path)
    assert msg.startswith(f"{path}:{line}: generator.params.stages.1.params.fusion.type: ")
    assert "did you mean 'toy_fusion'?" in msg and "toy_gate" in msg


def test_wrong_type_and_missing_field(toy, write):
    text = TOY_RECIPE.replace("max_steps: 10", "max_steps: many").replace("name: toy\n", "")
    path = write("r.yaml", text)
    lines = errors_of(path)
    assert any(m.startswith(f"{path}:1: name: Field required") for m in lines)
    steps_line = text.lstrip("\n").splitlines().index("  max_steps: many") + 1
    assert any(m.startswith(f"{path}:{steps_line}: train.max_steps: ") for m in lines)


def test_plugin_param_value_error(toy, write):
    text = TOY_RECIPE.replace("size: 4", "size: -1")
    path = write("r.yaml", text)
    line = text.lstrip("\n").splitlines().index("      size: -1") + 1
    (msg,) = errors_of(path)
    assert msg.startswith(
        f"{path}:{line}: data.dataset.params.size: Input should be greater than 0"
    )


def test_error_inherited_from_base_names_the_base_file(toy, write):
    base = write("base.yaml", TOY_RECIPE.replace("channels: 16", "channels: lots"))
    child = write("child.yaml", "extends: base.yaml\nname: child\n")
    (msg,) = errors_of(child)
    assert msg.startswith(f"{base}:")
    assert "generator.params.stages.1.params.channels" in msg


def test_error_from_an_override_names_the_override(toy, write):
    path = write("r.yaml", TOY_RECIPE)
    (msg,) = errors_of(path, ["train.max_steps=-5"])
    assert msg.startswith("--set train.max_steps=-5: train.max_steps: ")


def test_plugin_name_cannot_be_an_import_path(toy, write):
    path = write("r.yaml", TOY_RECIPE.replace("type: toy_disc", "type: os.system", 1))
    (msg,) = errors_of(path)
    assert "discriminators.0.type" in msg and "never import paths" in msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: x\n  bad: indent\n", ":2: invalid YAML"),
        ("- a list\n", ":1: the recipe must be a mapping"),
        ("extends: [a, b]\nname: x\n", ":1: extends: must be the path of one recipe file"),
        ("extends: missing.yaml\nname: x\n", "missing.yaml: recipe file not found"),
    ],
)
def test_file_level_errors(write, text, expected):
    path = write("r.yaml", text)
    with pytest.raises(RecipeError) as err:
        read_recipe(path)
    assert expected in str(err.value)


def test_extends_cycle_is_reported(write):
    write("a.yaml", "extends: b.yaml\n")
    path = write("b.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle"):
        read_recipe(path)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.max_steps", "expected KEY.PATH=VALUE"),
        ("train..x=1", "is not a dotted path"),
        ("losses.5.weight=1", "index 5 out of range"),
        ("name.x=1", "cannot set a key on a str"),
        ("name.x.y=1", "name.x: cannot descend into a str"),
    ],
)
def test_bad_overrides(toy, write, override, expected):
    path = write("r.yaml", TOY_RECIPE)
    with pytest.raises(RecipeError, match=expected):
        read_recipe(path, [override])


def test_recipes_are_read_with_the_safe_loader(toy, write):
    path = write("r.yaml", "!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        read_recipe(path)
    assert yaml.safe_load("a: 1") == {"a": 1}


def test_a_key_given_twice_is_refused_with_both_lines(toy, write):
    # PyYAML alone keeps the last `train:` block and loses the first without a word
    text = "name: x\ntrain:\n  max_steps: 5\nseed: 1\ntrain:\n  lr: 0.1\n"
    path = write("r.yaml", text)
    with pytest.raises(RecipeError) as info:
        read_recipe(path)
    assert str(info.value) == (
        f"{path}:5: duplicate key 'train' (first at line 2); YAML would keep only the last"
    )
    # nested, in a file it extends, and through the CLI: one located line, exit 2
    write("base.yaml", "train:\n  params:\n    a: 1\n    b: 2\n    a: 3\n")
    child = write("child.yaml", "extends: base.yaml\nname: y\n")
    with pytest.raises(RecipeError, match=r"base\.yaml:5: duplicate key 'a' \(first at line 3\)"):
        read_recipe(child)
    from t2i_stages.cli.main import main

    assert main(["validate", str(path)]) == 2
    # merge keys and aliases are YAML's own and stay allowed
    ok = write("ok.yaml", "a: &x {k: 1}\nb:\n  <<: *x\n  m: 2\nc: *x\n")
    assert read_recipe(ok) is not None


def test_an_ablation_file_with_a_key_given_twice_is_refused(write):
    from t2i_stages.ablation import read_ablation
    from t2i_stages.ablation.spec import AblationError

    path = write("a.yaml", "base: r.yaml\nvariants: []\nbase: s.yaml\n")
    with pytest.raises(AblationError, match=r"a\.yaml:3: duplicate key 'base' \(first at line 1\)"):
        read_ablation(path)


def test_extends_builtin_names_an_installed_recipe(write, tmp_path):
    child = write(
        "child.yaml",
        """
        extends: builtin:dmgan.yaml
        name: mine
        train:
          max_stpes: 3
        """,
    )
    rs = read_recipe(child)
    assert rs.data["name"] == "mine" and rs.data["generator"]["type"] == "stagewise"
    assert rs.data["seed"] == 0  # from dmgan.yaml's own parent, base/shapes-demo.yaml
    assert rs.sources[1].label.endswith("dmgan.yaml") and "recipes" in rs.sources[1].label
    assert (
        read_recipe("builtin:coco/grgan.yaml").data["name"]
        == read_recipe(ROOT / "recipes" / "coco" / "grgan.yaml").data["name"]
    )
    (msg,) = errors_of(child)  # validated: the child's own typo, at its own line
    assert msg == (
        f"{child}:4: train.max_stpes: unknown field (not allowed here); did you mean 'max_steps'?"
    )


@pytest.mark.parametrize(
    "target, expected",
    [
        (
            "builtin:dmgna.yaml",
            "no built-in recipe 'dmgna.yaml'; did you mean 'builtin:dmgan.yaml'?",
        ),
        ("builtin:../pyproject.toml", "no built-in recipe '../pyproject.toml'; "),
        ("builtin:ablations/grgan-stages.yaml", "no built-in recipe 'ablations/grgan-stages.yaml'"),
    ],
)
def test_an_unknown_builtin_recipe_is_a_located_error_listing_them(write, target, expected):
    path = write("child.yaml", f"name: x\nextends: {target}\n")
    with pytest.raises(RecipeError) as err:
        read_recipe(path)
    (line,) = err.value.lines
    assert line.startswith(f"{path}:2: extends: {expected}")
    assert (
        "built-in recipes: attngan.yaml, base/shapes-demo.yaml, base/shapes-hard-gpu.yaml" in line
    )
    assert "coco/attngan.yaml" in line and "shapes-hard/grgan.yaml" in line
