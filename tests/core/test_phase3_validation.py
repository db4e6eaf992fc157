"""Validation's phase 3: problems across components, located at file:line, before anything is
rendered or trained (``t2i_stages.recipe.semantic``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2i_stages.build import assemble
from t2i_stages.cli.main import main
from t2i_stages.errors import RecipeError, T2IError
from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry

GRGAN = Path(__file__).resolve().parents[2] / "recipes" / "grgan.yaml"


@pytest.fixture()
def child(tmp_path, monkeypatch):
    """Write a recipe extending recipes/grgan.yaml; a cache home that must stay empty."""
    home = tmp_path / "home"
    monkeypatch.setenv("T2I_STAGES_HOME", str(home))

    def write(body: str) -> Path:
        path = tmp_path / "child.yaml"
        path.write_text(f"extends: {GRGAN}\nname: child\n{body}", encoding="utf-8")
        return path

    write.home = home
    return write


def _validate(path: Path, capsys) -> tuple[int, str]:
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def test_no_adversarial_loss_is_reported_with_its_line(child, capsys):
    path = child("losses:\n  - type: ca_kl\n  - type: sentence_matching\n")
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}:3: losses: the recipe names no adversarial loss" in err
    assert not child.home.exists()  # nothing rendered, no matcher trained


def test_two_discriminators_for_three_stages_is_reported_with_its_line(child, capsys):
    path = child(
        "discriminators:\n"
        "  - type: stagewise\n"
        "    params: {conditioning: {type: none}}\n"
        "  - type: stagewise\n"
    )
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}:3: discriminators: 2 given for 3 generator stages [8, 16, 32]" in err
    assert not child.home.exists()


def test_a_loss_naming_a_missing_stage_points_at_that_stage(child, capsys):
    path = child(
        "losses:\n  - type: bce_mismatch\n  - type: sentence_matching\n    stages: [1, 5]\n"
    )
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}:6: losses.1.stages.1: 'sentence_matching' names stage 5" in err
    assert "stages 0..2" in err


def test_a_matching_loss_without_a_matcher(child, capsys):
    path = child(
        "matcher: null\n"
        "text_encoder: {type: damsm_rnn}\n"
        "losses:\n  - type: bce_mismatch\n  - type: word_region_matching\n"
    )
    code, err = _validate(path, capsys)
    assert code == 2
    assert f"{path}:7: losses.1.type: 'word_region_matching' is a matching loss" in err


def test_no_text_features_at_all(child, capsys):
    code, err = _validate(child("matcher: null\n"), capsys)
    assert code == 2 and "matcher: a GAN needs text features" in err


def test_every_problem_is_listed_at_once(child):
    path = child(
        "discriminators:\n  - type: stagewise\nlosses:\n  - type: ca_kl\n    stages: [7]\n"
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path, registry=load_registry())
    messages = "\n".join(info.value.lines)
    assert "no adversarial loss" in messages
    assert "1 given for 3 generator stages" in messages
    assert "names stage 7" in messages


def test_a_loss_whose_role_cannot_be_told_is_a_located_error_naming_it(child, capsys):
    from t2i_stages.spec import ComponentSpec, NoParams

    class Roleless:
        def __call__(self, *args):
            return 0.0

    class Plugin:
        from t2i_stages.hookspecs import hookimpl

        @hookimpl
        def t2i_stages_losses(self):
            return {"roleless": ComponentSpec(lambda params, **ctx: Roleless(), NoParams)}

    registry = load_registry(plugins=[("roleless-plugin", Plugin())])
    path = child("losses:\n  - type: bce_mismatch\n  - type: roleless\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, registry=registry)
    (line,) = info.value.lines
    assert line.startswith(f"{path}:5: losses.1.type: loss 'roleless': cannot tell its role")


def test_assemble_runs_the_same_checks_on_a_recipe_that_skipped_validation(child):
    from t2i_stages.recipe.sources import read_recipe
    from t2i_stages.recipe.validate import validate_recipe

    registry = load_registry()
    rs = read_recipe(child("losses:\n  - type: ca_kl\n"))
    recipe = validate_recipe(rs, registry, components=False)  # phases 1 and 2 only
    with pytest.raises(T2IError, match="^losses: the recipe names no adversarial loss"):
        assemble(recipe, registry)
    assert not child.home.exists()
