"""The CLI: exit codes, one-line errors, plugin listing, schema, run's resolved recipe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from core_recipes import TOY_RECIPE

from t2i_stages.cli.main import main


def test_validate_ok(toy, write, capsys):
    assert main(["validate", str(write("r.yaml", TOY_RECIPE))]) == 0
    assert "ok (toy)" in capsys.readouterr().out


def test_validate_error_exits_2_with_one_line_and_no_traceback(toy, write, capsys):
    path = write("r.yaml", TOY_RECIPE.replace("width: 8", "widht: 8"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}:")
    assert "generator.params.widht: unknown field" in err


def test_debug_shows_the_traceback(toy, write, capsys):
    path = write("r.yaml", TOY_RECIPE.replace("width: 8", "widht: 8"))
    assert main(["--debug", "validate", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_recipe_exits_2(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_plugins_lists_components_with_provider(toy, capsys):
    assert main(["plugins", "--kind", "fusion"]) == 0
    out = capsys.readouterr().out
    row = next(
        line for line in out.splitlines() if line.startswith("fusion") and "toy_fusion" in line
    )
    assert "acme-t2i" in row and "0.1" in row and "toy fusion" in row


def test_plugins_name_shows_each_field_with_its_type_default_and_description(toy, capsys):
    assert main(["plugins", "toy_stage"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "stage 'toy_stage' (acme-t2i 0.1, plugin 'acme')"
    rows = {line.split()[0]: line for line in out[2:]}
    assert rows["channels"].split()[1:4] == ["int", "4", "Feature"]
    assert "FusionSlot | null" in rows["fusion"] and "Optional fusion block." in rows["fusion"]
    assert main(["plugins", "toy_gen"]) == 0
    gen = capsys.readouterr().out
    assert "list[StageSlot]" in gen and "[]" in gen and "The stages, in order." in gen


def test_plugins_params_lists_every_components_fields(toy, capsys):
    assert main(["plugins", "--kind", "fusion", "--params"]) == 0
    out = capsys.readouterr().out
    block = out.split("toy_fusion", 1)[1]
    assert "heads" in block and "int (>= 1)" in block and "Attention heads." in block


def test_plugins_with_an_unknown_name_exits_2_with_a_suggestion(toy, capsys):
    assert main(["plugins", "toy_fusoin"]) == 2
    assert "unknown component 'toy_fusoin'; did you mean 'toy_fusion'?" in capsys.readouterr().err
    assert main(["plugins", "toy_fusion", "--kind", "stage"]) == 2
    assert "unknown stage 'toy_fusion'" in capsys.readouterr().err


def test_plugins_warns_about_a_broken_plugin_but_succeeds(toy, install_dist, capsys):
    install_dist("broken-t2i", {"broken": "t2i_toy_broken"})
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "plugin 'broken' (t2i_toy_broken) failed" in captured.err
    assert "toy_gen" in captured.out


def test_schema_describes_installed_plugins(toy, capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    fusion = schema["$defs"]["FusionSlot"]["oneOf"]
    assert {opt["properties"]["type"]["const"] for opt in fusion} >= {"toy_fusion", "toy_gate"}
    assert "extends" in schema["properties"]


def test_components_build_and_the_resolved_recipe_is_written(toy, write, tmp_path):
    from t2i_stages.build import assemble
    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry
    from t2i_stages.training.run_folder import write_resolved_recipe

    registry = load_registry()
    path = write("r.yaml", TOY_RECIPE)
    recipe = load_recipe(path, ["generator.params.width=3"], registry)
    built = assemble(recipe, registry, parts=["generator"])
    assert built.generator.params.width == 3
    assert [s.params.channels for s in built.generator.ctx["stages"]] == [4, 16]
    write_resolved_recipe(recipe, registry, tmp_path / "run")
    resolved = yaml.safe_load((tmp_path / "run" / "recipe.resolved.yaml").read_text())
    assert resolved["generator"]["params"]["width"] == 3
    assert resolved["plugins"]["generator/toy_gen"]["package"] == "acme-t2i"


def test_run_of_an_invalid_recipe_exits_2_before_training(toy, write, tmp_path, capsys):
    path = write("r.yaml", TOY_RECIPE.replace("max_steps: 10", "max_stepz: 10"))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "train.max_stepz: unknown field" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_usage_errors_exit_2():
    assert main([]) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "t2i_stages.cli.main", "validate"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "the following arguments are required" in proc.stderr


def test_every_command_has_help(capsys):
    from t2i_stages.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # in-process: build_parser already imported every command module
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0, name
        assert f"usage: t2i-stages {name}" in capsys.readouterr().out
    proc = subprocess.run(  # and the program itself, once
        [sys.executable, "-m", "t2i_stages.cli.main", "run", "--help"], capture_output=True
    )
    assert proc.returncode == 0


def test_validate_on_an_ablation_file_points_to_ablate_plan(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "recipes" / "ablations" / "grgan-stages.yaml"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1  # one line, not eight "unknown field" errors
    assert "ablation file" in err and f"t2i-stages ablate {path} --plan" in err


def test_the_readme_usage_shows_every_command():
    from pathlib import Path

    from t2i_stages.cli.main import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    usage = readme[readme.index("## Usage") :]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [name for name in sub.choices if f"t2i-stages {name}" not in usage]
    assert not missing, f"README Usage lacks: {missing}"
    assert "save_grid" in usage or "generate(" in usage  # a grid from the Python API


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`t2i-stages plugins --params | head -1`: a closed pipe ends the command quietly."""
    import subprocess
    import sys

    code = (
        "import sys; from t2i_stages.cli.main import main; sys.exit(main(['plugins', '--params']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().startswith(b"KIND")
    proc.stdout.close()  # the reader leaves after one line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err, err
