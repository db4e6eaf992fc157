"""What a run records and says: the auto decisions, why it stopped, and resume's recipe check."""

from __future__ import annotations

import json

import pytest
import yaml

from t2i_stages import hardware
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError
from t2i_stages.hardware import CpuInfo
from t2i_stages.training import train

ZEN3 = CpuInfo(model="AMD EPYC 7B13", flags=frozenset({"avx2"}), aten_capability="AVX2")
QUIET = dict(log=lambda *a, **k: None)


def test_precision_and_threads_are_recorded_with_their_reasons(micro_run):
    out, summary = micro_run
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    for record in (resolved["runtime"], metrics["runtime"]):
        assert record["precision"]["requested"] == "auto"
        assert record["precision"]["chosen"] in ("bf16", "fp32")
        assert record["precision"]["reason"]
        assert record["threads"]["chosen"] >= 1 and record["threads"]["reason"]
    assert metrics["stopped_by"] == "max_steps at step 6 of 6"


def test_explicit_bf16_on_an_avx2_cpu_warns_in_the_run_log(micro, registry, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: ZEN3)
    lines: list[str] = []
    train(
        micro("train.max_steps=1", "train.precision=bf16"),
        registry,
        tmp_path,
        evaluate=False,
        log=lambda *a, **k: lines.append(" ".join(map(str, a))),
    )
    warning = [line for line in lines if line.startswith("warning: train.precision bf16")]
    assert len(warning) == 1 and "14x slower" in warning[0] and "precision: auto" in warning[0]
    assert any(line.startswith("train.precision: bf16 on cpu") for line in lines)


def test_a_run_cut_by_its_time_cap_says_so_everywhere(micro, registry, tmp_path, monkeypatch):
    lines: list[str] = []
    summary = train(
        micro("train.max_steps=50", "train.max_minutes=0.0001", "train.log_every=1"),
        registry,
        tmp_path,
        log=lambda *a, **k: lines.append(" ".join(map(str, a))),
    )
    step = summary["step"]
    assert step < 50
    assert summary["stopped_by"] == f"max_minutes at step {step} of 50"
    text = "\n".join(lines)
    assert "STOPPED EARLY: max_minutes" in text and "raise train.max_minutes" in text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stopped_by"] == f"max_minutes at step {step} of 50"
    assert "undertrained" in metrics["training"]["advice"]
    report = (tmp_path / "report.html").read_text()
    head = report[: report.index("<h2")]  # before the first section
    assert "Stopped early" in head and f"step {step} of 50" in head


def test_the_estimate_is_printed_once_from_measured_steps():
    from t2i_stages.training.budget import StepClock

    clock = StepClock(0, 2000, 7.0, 32)
    assert clock.tick(1) is None and clock.tick(2) is None
    assert clock.tick(3) is not None  # after the third step, from the two after the first
    assert clock.tick(4) is None  # once
    clock.seconds_per_step = 0.4
    line = clock.estimate()
    assert "0.400 s" in line and "80.0 images/s" in line
    assert "13.3 min" in line and "near step 1050 of 2000" in line
    assert "max_minutes" not in StepClock(0, 100, 7.0, 32).estimate()
    resumed = StepClock(1000, 2000, 7.0, 32, spent_s=6 * 60)  # 6 of its 7 minutes spent
    resumed.seconds_per_step = 0.4
    assert "near step 1150 of 2000" in resumed.estimate()


def test_a_resumed_time_bound_run_continues_its_clock(micro, registry, tmp_path):
    """The checkpoint keeps the loop's seconds; a resume with the budget spent stops after
    one step, where a restarted clock would train max_minutes again."""
    budget = ("train.max_steps=100000", "train.max_minutes=0.03", "train.ckpt_every=100000")
    first = train(micro(*budget), registry, tmp_path, evaluate=False, **QUIET)["trainer"]
    assert first.stop.by == "max_minutes" and first.train_seconds >= 0.03 * 60
    again = train(micro(*budget), registry, tmp_path, resume=True, evaluate=False, **QUIET)
    t = again["trainer"]
    assert t.stop.by == "max_minutes" and t.step == first.step + 1
    assert t.train_seconds > first.train_seconds
    assert again["seconds"] >= first.train_seconds  # the summary counts the whole run


def test_resume_refuses_a_changed_recipe_with_a_diff(micro, registry, tmp_path):
    train(micro("train.max_steps=1"), registry, tmp_path, evaluate=False, **QUIET)
    saved = (tmp_path / "recipe.resolved.yaml").read_text()
    with pytest.raises(T2IError) as err:
        train(
            micro("train.max_steps=2", "train.precision=fp32", "seed=5"),
            registry,
            tmp_path,
            resume=True,
            evaluate=False,
            **QUIET,
        )
    message = str(err.value)
    assert "train.precision: 'auto' -> 'fp32'" in message and "seed: 0 -> 5" in message
    assert "--allow-changes" in message and "\n" not in message
    assert (tmp_path / "recipe.resolved.yaml").read_text() == saved  # nothing overwritten


def test_allow_changes_continues_and_records_them(micro, registry, tmp_path):
    train(micro("train.max_steps=1"), registry, tmp_path, evaluate=False, **QUIET)
    summary = train(
        micro("train.max_steps=2", "train.precision=fp32"),
        registry,
        tmp_path,
        resume=True,
        evaluate=False,
        allow_changes=True,
        **QUIET,
    )
    assert summary["step"] == 2
    changes = yaml.safe_load((tmp_path / "recipe.changes.yaml").read_text())
    assert changes[-1]["allowed"] is True
    assert "train.precision: 'auto' -> 'fp32'" in changes[-1]["changes"]
    assert list(tmp_path.glob("recipe.resolved.before-*.yaml"))


def test_longer_training_needs_no_flag(micro, registry, tmp_path):
    train(micro("train.max_steps=1"), registry, tmp_path, evaluate=False, **QUIET)
    summary = train(
        micro("train.max_steps=2"), registry, tmp_path, resume=True, evaluate=False, **QUIET
    )
    assert summary["step"] == 2


def test_a_runs_own_recipe_validates_and_resumes_without_the_recipe_path(micro, registry, tmp_path):
    train(micro("train.max_steps=1"), registry, tmp_path, evaluate=False, **QUIET)
    assert main(["validate", str(tmp_path / "recipe.resolved.yaml")]) == 0
    assert main(["run", "--resume", str(tmp_path), "--no-eval"]) == 0
    assert not (tmp_path / "recipe.changes.yaml").exists()  # the same recipe: no changes


def test_resume_without_a_recipe_needs_a_run_folder(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "give a RECIPE" in capsys.readouterr().err


def test_a_damaged_resolved_recipe_is_a_one_line_error(micro, registry, tmp_path, capsys):
    train(micro("train.max_steps=1"), registry, tmp_path, evaluate=False, **QUIET)
    (tmp_path / "recipe.resolved.yaml").write_text("train: [unclosed\n")
    capsys.readouterr()
    assert main(["run", "--resume", str(tmp_path), "--no-eval"]) == 2
    err = capsys.readouterr().err.strip()
    assert "recipe.resolved.yaml" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "damage, says",
    [
        (b"train: [unclosed\n", ":2: invalid YAML"),
        (b"- a\n- list\n", ":1: the recipe must be a mapping, not list"),
        (bytes(range(128, 256)), ": cannot read recipe: 'utf-8' codec can't decode"),
    ],
    ids=["invalid-yaml", "a-list", "binary"],
)
def test_every_command_reading_a_damaged_run_recipe_says_so_in_one_line(
    micro, registry, tmp_path_factory, capsys, damage, says
):
    run = tmp_path_factory.mktemp("damaged")
    train(micro("train.max_steps=1"), registry, run, evaluate=False, **QUIET)
    (run / "recipe.resolved.yaml").write_bytes(damage)
    commands = [
        ["eval", str(run)],
        ["export", str(run), "--out", str(run / "deploy")],
        ["generate", "--model", str(run), "--text", "a red circle", "--out", str(run / "g.png")],
        ["run", "--resume", str(run), "--no-eval"],
    ]
    for argv in commands:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, (argv, err)
        assert f"{run / 'recipe.resolved.yaml'}{says}" in err, (argv, err)
