"""Divergence: an injected NaN (in a loss value, or only in a gradient) is caught in the step it
appears, before any optimizer step; the run stops naming the loss and the stage and keeps the
last good checkpoint, or skips the update when ``train.skip_nonfinite`` allows it."""

from __future__ import annotations

import math

import pytest
import torch
from rel_helpers import MICRO, QUIET

from t2i_stages.checkpoint import list_checkpoints, load_checkpoint
from t2i_stages.cli.main import main
from t2i_stages.training import Trainer, prepare_run_folder, train
from t2i_stages.training.finite import DivergenceError
from t2i_stages.training.runtime import Runtime

BASE = ("train.ckpt_every=2", "train.sample_every=100", "train.log_every=1", "train.threads=1")


def _nan(stages: str, **params) -> str:
    inner = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"losses.4={{type: nan_loss, params: {{{inner}}}, stages: {stages}}}"


def _all_finite(states: dict) -> bool:
    return all(
        torch.isfinite(t).all()
        for sd in states.values()
        for t in sd.values()
        if t.is_floating_point()
    )


def test_nan_loss_stops_the_run_naming_loss_and_stage(micro, fault_registry, tmp_path):
    recipe = micro(*BASE, "train.max_steps=6", _nan("[1]", at=3), reg=fault_registry)
    with pytest.raises(DivergenceError) as err:
        train(recipe, fault_registry, tmp_path, **QUIET)
    msg = str(err.value)
    assert msg.startswith("step 3: generator loss 'nan_loss' at stage 1 is nan;"), msg
    assert "last good checkpoint is kept in" in msg and len(msg.splitlines()) == 1
    # the last good checkpoint (step 2) is intact and holds finite weights; nothing after it
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002"]
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "step_00000002")
    assert _all_finite(ckpt.components)


def test_nan_gradient_with_finite_losses_is_caught(micro, fault_registry, tmp_path):
    recipe = micro(*BASE, "train.max_steps=4", _nan("[1]", at=2, mode="grad"), reg=fault_registry)
    with pytest.raises(DivergenceError) as err:
        train(recipe, fault_registry, tmp_path, **QUIET)
    msg = str(err.value)
    assert msg.startswith("step 2: generator gradient is not finite in"), msg
    assert "stages.1" in msg and "though every loss term was finite" in msg
    assert list_checkpoints(tmp_path / "checkpoints") == []  # no checkpoint was due yet


def test_nan_discriminator_loss_names_the_discriminator_and_stage(micro, fault_registry, tmp_path):
    recipe = micro(
        *BASE, "train.max_steps=4", _nan("[0]", at=2, role="adversarial"), reg=fault_registry
    )
    with pytest.raises(DivergenceError, match=r"^step 2: discriminator 0 \(stage 0\) loss "):
        train(recipe, fault_registry, tmp_path, **QUIET)


def test_a_skipped_update_leaves_the_weights_untouched(micro, fault_registry, tmp_path):
    recipe = micro(*BASE, "train.skip_nonfinite=1", _nan("[1]", at=2, until=3), reg=fault_registry)
    prepare_run_folder(recipe, fault_registry, tmp_path, resume=False)
    messages: list[str] = []
    t = Trainer(recipe, fault_registry, tmp_path, Runtime.create("cpu"), log=messages.append)
    batches = t.batches()
    t.train_step([t.to_device(next(batches))])  # call 1: fine
    t.step += 1
    g_before = {k: v.clone() for k, v in t.G.named_parameters()}
    d_before = {k: v.clone() for k, v in t.Ds[0].named_parameters()}
    adam_steps = [s["step"].clone() for s in t.opt_g.state.values()]
    logs = t.train_step([t.to_device(next(batches))])  # call 2: NaN in G's loss -> skipped
    t.step += 1
    assert t.skipped_nonfinite == 1 and float(logs["nonfinite_skipped"]) == 1.0
    assert all(math.isfinite(float(v)) for v in logs.values())
    for k, v in t.G.named_parameters():
        assert torch.equal(v, g_before[k]), f"G.{k} changed by a skipped update"
    assert [s["step"] for s in t.opt_g.state.values()] == adam_steps
    # the D update of that step had finite losses and gradients, so it was applied
    assert any(not torch.equal(p, d_before[n]) for n, p in t.Ds[0].named_parameters())
    (warning,) = [m for m in messages if m.startswith("warning:")]
    assert "step 2: generator loss 'nan_loss' at stage 1 is nan; update skipped (1 of 1" in warning
    with pytest.raises(DivergenceError, match=r"^step 3: .*after skipping 1 update\(s\)"):
        t.train_step([t.to_device(next(batches))])  # call 3: over the limit


def test_a_run_with_skipped_updates_finishes_and_remembers_them(micro, fault_registry, tmp_path):
    recipe = micro(
        *BASE,
        "train.max_steps=4",
        "train.skip_nonfinite=2",
        _nan("[1]", at=2, until=3),
        reg=fault_registry,
    )
    summary = train(recipe, fault_registry, tmp_path, **QUIET)
    assert summary["step"] == 4 and summary["skipped_nonfinite"] == 2
    ckpt = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])
    assert _all_finite(ckpt.components) and ckpt.state["skipped_nonfinite"] == 2


def test_cli_reports_divergence_in_one_line_with_exit_2(fault_registry, tmp_path, capsys):
    args = ["run", str(MICRO), "--out", str(tmp_path), "--no-eval", "--device", "cpu"]
    for item in (*BASE, "train.max_steps=4", _nan("[1]", at=3)):
        args += ["--set", item]
    assert main(args) == 2
    captured = capsys.readouterr().err
    assert "Traceback" not in captured
    err = [line for line in captured.splitlines() if line.startswith("error: ")]
    assert len(err) == 1, captured
    assert err[0].startswith("error: step 3: generator loss 'nan_loss' at stage 1 is nan;")


def test_deferred_check_drops_a_bad_update_on_the_device_without_naming(
    micro, fault_registry, tmp_path
):
    """finite_check 'deferred' (no host sync per step): the fused optimizer drops the NaN update
    and the tally, read at the next logging step, stops the run past train.skip_nonfinite."""
    recipe = micro(
        *BASE,
        "train.finite_check=deferred",
        "train.skip_nonfinite=1",
        _nan("[1]", at=2, until=3),
        reg=fault_registry,
    )
    prepare_run_folder(recipe, fault_registry, tmp_path, resume=False)
    messages: list[str] = []
    t = Trainer(recipe, fault_registry, tmp_path, Runtime.create("cpu"), log=messages.append)
    batches = t.batches()
    t.train_step([t.to_device(next(batches))])
    t.step += 1
    t.check_deferred()
    g_before = {k: v.clone() for k, v in t.G.named_parameters()}
    t.train_step([t.to_device(next(batches))])  # NaN in G's loss: dropped on the device
    t.step += 1
    for k, v in t.G.named_parameters():
        assert torch.equal(v, g_before[k]), f"G.{k} changed by a dropped update"
    assert float(t.guard.tally) == 1.0 and t.skipped_nonfinite == 0  # not read yet
    t.check_deferred()
    assert t.skipped_nonfinite == 1
    (warning,) = [m for m in messages if m.startswith("warning:")]
    assert warning.startswith("warning: steps 2..2: 1 update(s) had a non-finite loss")
    t.train_step([t.to_device(next(batches))])
    t.step += 1
    with pytest.raises(DivergenceError, match=r"^steps 3\.\.3: 1 update\(s\) .* more than"):
        t.check_deferred()


def test_deferred_check_needs_a_fused_optimizer(micro, fault_registry, tmp_path):
    recipe = micro(*BASE, "train.finite_check=deferred", "train.optim_g.type=adamax")
    prepare_run_folder(recipe, fault_registry, tmp_path, resume=False)
    with pytest.raises(Exception, match="train.finite_check: 'deferred' .* optim_g is 'adamax'"):
        Trainer(recipe, fault_registry, tmp_path, Runtime.create("cpu"), log=QUIET["log"])
