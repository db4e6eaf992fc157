"""A plugin that raises while registering, or while building a component, is reported by name;
the CLI turns the latter into one line and exit code 2."""

from __future__ import annotations

from rel_helpers import HERE, MICRO, write_dist

from t2i_stages.cli.main import main
from t2i_stages.errors import PluginError
from t2i_stages.recipe import LossSlot
from t2i_stages.registry import load_registry


def test_plugin_raising_during_registration_is_reported_and_the_rest_works(
    tmp_path, monkeypatch, capsys
):
    write_dist(tmp_path, "rel-raising", {"raising": "t2i_rel_raising"})
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("T2I_STAGES_LOAD_PLUGINS", raising=False)
    registry = load_registry()
    (error,) = [e for e in registry.load_errors if e.name == "raising"]
    assert "registration exploded" in error.error and error.entry_point == "t2i_rel_raising"
    assert "bce_mismatch" in registry.names("loss")  # built-ins still load
    assert main(["plugins"]) == 0
    assert "plugin 'raising' (t2i_rel_raising) failed" in capsys.readouterr().err
    # a plugin package's CI can catch it
    assert main(["plugins", "--check"]) == 2
    assert "error: plugin 'raising' (t2i_rel_raising) failed" in capsys.readouterr().err


def test_a_name_missing_because_its_plugin_failed_says_so(tmp_path, monkeypatch, capsys):
    # not only "did you mean 'refine'?": the recipe may name what the broken plugin provides
    write_dist(tmp_path, "rel-raising", {"raising": "t2i_rel_raising"})
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("T2I_STAGES_LOAD_PLUGINS", raising=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(MICRO.read_text().replace("type: bce_mismatch", "type: bce_mismatch_v2"))
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "unknown loss 'bce_mismatch_v2'; did you mean 'bce_mismatch'?" in err
    assert "(not loaded, and it may provide it: plugin 'raising' (t2i_rel_raising) failed: " in err
    assert len(err.strip().splitlines()) == 1


def test_plugins_check_passes_when_every_plugin_loads(capsys):
    assert main(["plugins", "--check"]) == 0
    assert "error" not in capsys.readouterr().err


def test_plugin_raising_during_construction_is_named(fault_registry):
    slot = LossSlot(type="boom_loss")
    try:
        fault_registry.build("loss", slot)
    except PluginError as exc:
        msg = str(exc)
    else:
        raise AssertionError("building boom_loss did not fail")
    assert msg == (
        "loss 'boom_loss' (plugin 'faults') failed to build: RuntimeError: boom while building"
    )


def test_cli_reports_a_construction_failure_in_one_line(fault_registry, tmp_path, capsys):
    args = ["run", str(MICRO), "--out", str(tmp_path), "--no-eval", "--device", "cpu"]
    args += ["--set", "train.max_steps=1", "--set", "losses.4={type: boom_loss}"]
    assert main(args) == 2
    captured = capsys.readouterr().err
    # validation builds the losses (phase 3): the error is one line, located, before any render
    errors = [line for line in captured.splitlines() if line.startswith("error")]
    assert errors == [
        "error: --set losses.4={type: boom_loss}: losses.4.type: loss 'boom_loss' (plugin "
        "'faults') failed to build: RuntimeError: boom while building"
    ]
    assert "Traceback" not in captured


def test_a_build_error_with_cxx_frames_is_one_line(fault_registry, tmp_path, capsys):
    args = ["run", str(MICRO), "--out", str(tmp_path), "--no-eval", "--device", "cpu"]
    args += ["--set", "train.max_steps=1", "--set", "losses.4={type: cxx_loss}"]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [
        "error: --set losses.4={type: cxx_loss}: losses.4.type: loss 'cxx_loss' (plugin "
        "'faults') failed to build: RuntimeError: [enforce fail at alloc_cpu.cpp:117] out of memory"
    ]
