"""Interruption: SIGTERM/SIGINT finish the step, checkpoint and exit 0 saying how to resume;
the resumed run is bit-identical to an uninterrupted one; SIGKILL during a checkpoint write
leaves the previous checkpoint loadable (and resuming from it is bit-identical too)."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from rel_helpers import MICRO, QUIET, REPO, cli_env, run_cli
from safetensors.torch import load_file

from t2i_stages.checkpoint import (
    latest_good_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from t2i_stages.training import Trainer, prepare_run_folder, train
from t2i_stages.training.runtime import Runtime

STEPS = 6
OVERRIDES = [
    f"train.max_steps={STEPS}",
    "train.ckpt_every=2",
    "train.log_every=1",
    "train.sample_every=100",
    "train.threads=1",  # the in-process reference must use the CLI runs' thread count
]
COMPONENTS = ("generator", "generator_ema", "discriminator_0", "discriminator_1")
_REFERENCE: dict[str, Path] = {}


def _args(out: Path, *extra: str) -> list[str]:
    args = ["run", str(MICRO), "--out", str(out), "--no-eval", "--device", "cpu"]
    for item in (*OVERRIDES, *extra):
        args += ["--set", item]
    return args


def _reference(micro, registry, root: Path) -> Path:
    """The uninterrupted run (in-process, one thread like the CLI runs), computed once."""
    if "out" not in _REFERENCE:
        train(micro(*OVERRIDES), registry, root / "uninterrupted", **QUIET)
        _REFERENCE["out"] = root / "uninterrupted"
    return _REFERENCE["out"] / "checkpoints" / f"step_{STEPS:08d}"


def _assert_bit_identical(a: Path, b: Path) -> None:
    for name in COMPONENTS:
        x, y = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), f"{name}.{key} differs"
    ox, oy = load_checkpoint(a).optimizers, load_checkpoint(b).optimizers
    for opt in ox:
        for idx, state in ox[opt]["state"].items():
            for key, value in state.items():
                assert torch.equal(value, oy[opt]["state"][idx][key]), f"{opt} {idx} {key}"


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    end = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early:\n{proc.stdout.read()}")
        if time.time() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the training process")
        time.sleep(0.02)


def _steps_logged(out: Path) -> int:
    path = out / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sigterm_then_resume_is_bit_identical_to_an_uninterrupted_run(
    micro, registry, tmp_path_factory
):
    root = tmp_path_factory.mktemp("sigterm")
    out = root / "interrupted"
    after = random.SystemRandom().randint(1, 3)  # stop after a random step (printed on failure)
    # with a DataLoader worker, and SIGTERM sent to the whole process group as a scheduler
    # does: the worker must not die and take the main process down with it
    proc = run_cli(_args(out, "data.num_workers=1"), start_new_session=True)
    _wait_for(lambda: _steps_logged(out) >= after, 300, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    stopped = [line for line in log.splitlines() if line.startswith("stopped by SIGTERM")]
    assert len(stopped) == 1, log
    step = int(stopped[0].split("at step ")[1].split(";")[0])
    assert after <= step < STEPS, (after, step)
    assert "checkpoint written. Resume with: t2i-stages run " in stopped[0]
    assert latest_good_checkpoint(out / "checkpoints").state["step"] == step
    # resume with exactly the command it printed, while the reference trains in this process
    command = shlex.split(stopped[0].split("Resume with: ")[1])
    assert command[0] == "t2i-stages" and command[-2:] == ["--resume", str(out)]
    resumed = subprocess.Popen(
        [sys.executable, "-m", "t2i_stages.cli.main", *command[1:]],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reference = _reference(micro, registry, root)
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert f"resumed from {out / 'checkpoints' / f'step_{step:08d}'}" in log, log
    _assert_bit_identical(out / "checkpoints" / f"step_{STEPS:08d}", reference)


SLOW_WRITE = textwrap.dedent(
    """
    import sys, time, pathlib
    import t2i_stages.checkpoint as ck

    marker, slow_step = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    original = ck.state_dict_to_safetensors

    def slow(sd, path):
        original(sd, path)
        if path.parent.name.startswith(f".tmp-step_{slow_step:08d}-"):
            marker.write_text(str(path))
            time.sleep(600)  # killed here, mid-write

    ck.state_dict_to_safetensors = slow
    from t2i_stages.cli.main import main
    sys.exit(main(sys.argv[3:]))
    """
)


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(
    micro, registry, tmp_path_factory
):
    root = tmp_path_factory.mktemp("sigkill")
    out, marker, script = root / "killed", root / "writing", root / "slow_write.py"
    script.write_text(SLOW_WRITE)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marker), "4", *_args(out)],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(marker.exists, 300, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ckpts = out / "checkpoints"
    assert [p.name for p in list_checkpoints(ckpts)] == ["step_00000002"]
    (partial,) = ckpts.glob(".tmp-step_00000004-*")  # the half-written one, never renamed
    assert latest_good_checkpoint(ckpts).state["step"] == 2
    resumed = train(micro(*OVERRIDES), registry, out, resume=True, **QUIET)
    assert resumed["step"] == STEPS
    assert not partial.exists(), "the stale temporary folder was not cleaned"
    _assert_bit_identical(ckpts / f"step_{STEPS:08d}", _reference(micro, registry, root))


def test_sigint_finishes_the_step_and_checkpoints(micro, registry, tmp_path, monkeypatch):
    recipe = micro("train.max_steps=5", "train.ckpt_every=100", "train.sample_every=100")
    prepare_run_folder(recipe, registry, tmp_path, resume=False)
    messages: list[str] = []
    t = Trainer(recipe, registry, tmp_path, Runtime.create("cpu"), log=messages.append)
    t.resume_command = "t2i-stages run micro.yaml --resume RUN"
    step_once = t.train_step

    def step_and_interrupt(batches):
        logs = step_once(batches)
        if t.step == 1:  # during the second step
            signal.raise_signal(signal.SIGINT)
        return logs

    monkeypatch.setattr(t, "train_step", step_and_interrupt)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    summary = t.fit()
    assert summary["signal"] == "SIGINT" and summary["step"] == 2
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002"]
    assert messages[-1] == (
        "stopped by SIGINT at step 2; checkpoint written. Resume with: "
        "t2i-stages run micro.yaml --resume RUN"
    )
    assert signal.getsignal(signal.SIGINT) == before  # handlers restored


def test_a_second_sigint_stops_at_once(micro, registry, tmp_path, monkeypatch):
    recipe = micro("train.max_steps=5", "train.ckpt_every=100", "train.sample_every=100")
    prepare_run_folder(recipe, registry, tmp_path, resume=False)
    t = Trainer(recipe, registry, tmp_path, Runtime.create("cpu"), log=lambda *a: None)

    def twice(batches):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(t, "train_step", twice)
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert list_checkpoints(tmp_path / "checkpoints") == []


def test_sigterm_during_matcher_pretraining_caches_it_and_says_how_to_resume(
    tmp_path, monkeypatch, capsys
):
    import json as _json

    import t2i_stages.plugins.matchers.pretrain.loop as pretrain
    from t2i_stages.cli.main import main

    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))  # a matcher nobody cached
    real = pretrain.lr_factor

    def sigterm_at_step_2(params, step, seconds, budget):
        if step == 1:  # during the second step: it finishes, then pretraining stops
            signal.raise_signal(signal.SIGTERM)
        return real(params, step, seconds, budget)

    monkeypatch.setattr(pretrain, "lr_factor", sigterm_at_step_2)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    assert main(_args(out)) == 0  # a requested stop is not a failure
    assert signal.getsignal(signal.SIGTERM) == before
    log = capsys.readouterr().out
    (line,) = [x for x in log.splitlines() if x.startswith("stopped by SIGTERM")]
    assert line.startswith("stopped by SIGTERM during matcher pretraining at step 2 of 5; ")
    assert f"; the progress is cached in {tmp_path / 'home'}" in line
    assert line.endswith(f" --no-eval --device cpu --resume {out}"), line
    assert line.split("Resume with: ")[1].startswith(f"t2i-stages run {MICRO} --set ")
    (config,) = (tmp_path / "home").rglob("matchers/*/config.json")
    cached = _json.loads(config.read_text())
    assert (cached["steps"], cached["complete"], cached["stopped_by"]) == (2, False, "SIGTERM")
    assert list(out.glob("checkpoints/step_*")) == []
    # the printed command continues the pretraining, then trains
    monkeypatch.setattr(pretrain, "lr_factor", real)
    command = shlex.split(line.split("Resume with: ")[1])
    assert main(command[1:]) == 0
    log = capsys.readouterr().out
    assert "stopped (by SIGTERM) after 2 of 5 steps" in log and "continuing it" in log
    cached = _json.loads(config.read_text())
    assert (cached["steps"], cached["complete"], cached["continued_from"]) == (5, True, 2)
    assert latest_good_checkpoint(out / "checkpoints").state["step"] == STEPS
