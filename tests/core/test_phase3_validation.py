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


@pytest.mark.parametrize("name", ["grgan", "attngan", "dmgan", "dfgan"])
def test_the_built_ins_static_facts_agree_with_what_they_build(name):
    """`validate` trusts ComponentSpec.resolutions and .role; the build must say the same."""
    from t2i_stages.recipe.semantic import check_components, static_resolutions

    registry = load_registry()
    recipe = load_recipe(GRGAN.parent / f"{name}.yaml", registry=registry)
    assert check_components(recipe, registry, build=True) == []
    built = assemble(recipe, registry, parts=("generator", "losses"), device="meta")
    assert static_resolutions(recipe, registry) == built.resolutions
    for slot, loss in zip(recipe.losses, built.losses, strict=True):
        assert registry.get("loss", slot.type).spec.role == loss.role


def _plugin(**hooks):
    from t2i_stages.hookspecs import hookimpl

    class Plugin:
        pass

    for name, specs in hooks.items():
        setattr(Plugin, name, hookimpl(lambda self, specs=specs: specs))
    return Plugin()


def test_a_plugin_whose_static_facts_are_wrong_is_caught_by_a_build(child, capsys):
    from t2i_stages.recipe.semantic import check_components
    from t2i_stages.spec import ComponentSpec

    registry = load_registry()
    real = registry.get("stage", "refine").spec
    lying = ComponentSpec(
        real.factory,
        real.params,
        "doubles, it says, but claims x4",
        out_resolution=lambda p, r: 4 * r,
    )
    kl = registry.get("loss", "ca_kl").spec
    liar = ComponentSpec(kl.factory, kl.params, role="adversarial")
    registry = load_registry(
        plugins=[
            ("liar", _plugin(t2i_stages_stages={"x4": lying}, t2i_stages_losses={"kl2": liar}))
        ]
    )
    path = child(
        "generator:\n  type: stagewise\n  params:\n    stages:\n      - {type: initial, params: {upsamples: 1}}\n"
        "      - {type: x4}\n"
        "discriminators:\n  - type: stagewise\n  - type: stagewise\n"
        "losses:\n  - type: bce_mismatch\n  - type: kl2\n"
    )
    recipe = load_recipe(path, registry=registry, build=False)  # trusts the plugin
    assert recipe.generator.type == "stagewise"
    problems = dict(check_components(recipe, registry, build=True))
    assert (
        "declares stage resolutions [8, 32] but builds [8, 16]" in problems[("generator", "type")]
    )
    assert (
        problems[("losses", 1, "type")] == "'kl2' declares role 'adversarial' but builds a kl loss"
    )


def test_without_static_facts_validate_builds_what_it_must(child):
    """A third-party stage that declares no out_resolution: the checks still run (the
    generator is built on the meta device), and still find two Ds for three stages."""
    from t2i_stages.spec import ComponentSpec

    registry = load_registry()
    real = registry.get("stage", "refine").spec
    quiet = ComponentSpec(real.factory, real.params, "refine, with no static facts")
    registry = load_registry(plugins=[("quiet", _plugin(t2i_stages_stages={"quiet": quiet}))])
    path = child(
        "generator:\n  type: stagewise\n  params:\n    stages:\n      - {type: initial, params: {upsamples: 1}}\n"
        "      - {type: quiet}\n      - {type: quiet}\n"
        "discriminators:\n  - type: stagewise\n  - type: stagewise\n"
    )
    with pytest.raises(RecipeError, match=r"2 given for 3 generator stages \[8, 16, 32\]"):
        load_recipe(path, registry=registry, build=False)


def test_validate_build_finds_what_only_a_build_can(child, capsys):
    """A fusion block that needs words given a sentence vector: only building the stage finds
    it. `validate` (static) passes it; `validate --build`, and so `run`, report its line."""
    path = child(
        "generator:\n  type: stagewise\n  params:\n    stages:\n"
        "      - {type: initial, params: {upsamples: 1}}\n      - {type: refine}\n"
        "      - type: refine\n        params: {conditioning: {type: sentence}, fusion: {type: word_attention}}\n"
    )
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate", "--build", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: generator.type:" in err and "word_attention" in err
    assert not child.home.exists()


def test_a_first_build_on_the_meta_device_leaves_later_builds_whole():
    """Factories named by strings are imported at their first build. If that build is phase
    3's, inside ``torch.device("meta")``, a module-level tensor of the factory's module (the
    upsampling taps of the built-in layers) must still land on the CPU."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from t2i_stages.plugin import load_recipe, load_registry\n"
        "reg = load_registry()\n"
        f"recipe = load_recipe({str(GRGAN)!r}, registry=reg)\n"  # phase 3 builds on meta
        "g = reg.build('generator', recipe.generator)\n"
        "from t2i_stages.summary import random_text\n"
        "out = g(torch.randn(2, g.z_dim), torch.randn(2, g.eps_dim), random_text(2, g.text_dim, 5, 'cpu'))\n"
        "assert out.images[-1].device.type == 'cpu' and torch.isfinite(out.images[-1]).all()\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
