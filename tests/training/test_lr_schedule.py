"""train.lr_schedule: the rates each step gets, step- and time-bound, through a resume."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from t2i_stages.recipe import LRScheduleConfig
from t2i_stages.training import train
from t2i_stages.training.loop import Callback
from t2i_stages.training.schedule import lr_factor, run_progress

QUIET = dict(log=lambda *a, **k: None, evaluate=False)


def test_the_factor_holds_until_start_then_falls_to_final():
    lin = LRScheduleConfig(kind="linear", start=0.5, final=0.1)
    assert [lr_factor(lin, p) for p in (0.0, 0.5)] == [1.0, 1.0]
    assert lr_factor(lin, 0.75) == pytest.approx(0.55)
    assert lr_factor(lin, 1.0) == pytest.approx(0.1)
    cos = LRScheduleConfig(kind="cosine", start=0.0, final=0.0)
    assert lr_factor(cos, 0.5) == pytest.approx(0.5)
    assert lr_factor(cos, 0.25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(LRScheduleConfig(), 0.99) == 1.0  # constant: the default


def test_progress_is_the_clock_where_it_is_ahead_of_the_steps():
    assert run_progress(10, 100) == 0.1
    assert run_progress(10, 100, elapsed_s=30, max_minutes=1) == 0.5
    assert run_progress(90, 100, elapsed_s=30, max_minutes=1) == 0.9
    assert run_progress(10, 100, elapsed_s=600, max_minutes=1) == 1.0


def test_bad_settings_name_the_field(micro):
    with pytest.raises(ValidationError, match="start"):
        LRScheduleConfig(kind="linear", start=1.0)
    with pytest.raises(Exception, match="lr_schedule.kind"):
        micro("train.lr_schedule.kind=step")


class _Rates(Callback):
    def __init__(self):
        self.seen: list[tuple[float, ...]] = []

    def on_step(self, trainer, logs):
        opts = [trainer.opt_g, *trainer.opt_ds]
        self.seen.append(tuple(g["lr"] for o in opts for g in o.param_groups))


class _StopAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step(self, trainer, logs):
        return trainer.step >= self.step


def test_both_players_follow_the_schedule_and_the_log_shows_it(micro, registry, tmp_path):
    sched = ("train.lr_schedule.kind=linear", "train.lr_schedule.start=0.5")
    rates = _Rates()
    run = train(micro(*sched, "train.max_steps=8"), registry, tmp_path, callbacks=[rates], **QUIET)
    g_lr, d_lr = run["trainer"].cfg.optim_g.lr, run["trainer"].cfg.optim_d.lr
    factors = [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]  # step s (0-based) runs at progress s / 8
    for seen, f in zip(rates.seen, factors, strict=True):
        assert seen[0] == pytest.approx(g_lr * f)
        assert all(r == pytest.approx(d_lr * f) for r in seen[1:])
    logged = dict(run["trainer"].history["lr_scale"])
    assert logged[8] == pytest.approx(0.25)


def test_a_resumed_run_gets_the_rates_and_weights_of_an_uninterrupted_one(
    micro, registry, tmp_path
):
    ov = ("train.lr_schedule.kind=cosine", "train.lr_schedule.start=0.25", "train.ckpt_every=3")
    full = train(micro(*ov, "train.max_steps=8"), registry, tmp_path / "full", **QUIET)
    cut = tmp_path / "cut"
    stopped = train(micro(*ov, "train.max_steps=8"), registry, cut, callbacks=[_StopAt(3)], **QUIET)
    assert stopped["trainer"].step == 3
    resumed = train(micro(*ov, "train.max_steps=8"), registry, cut, resume=True, **QUIET)
    a, b = full["trainer"], resumed["trainer"]
    assert b.step == 8
    for name, p in a.G.state_dict().items():
        assert torch.equal(p, b.G.state_dict()[name]), name
    for da, db in zip(a.Ds, b.Ds, strict=True):
        for name, p in da.state_dict().items():
            assert torch.equal(p, db.state_dict()[name]), name


def test_a_time_bound_run_ends_at_the_final_rate(micro, registry, tmp_path):
    """With max_minutes far short of max_steps the clock drives the decay."""
    sched = ("train.lr_schedule.kind=linear", "train.lr_schedule.start=0.0")
    rates = _Rates()
    run = train(
        micro(*sched, "train.max_steps=100000", "train.max_minutes=0.05"),
        registry, tmp_path, callbacks=[rates], **QUIET,
    )  # fmt: skip
    assert run["trainer"].stop.by == "max_minutes" and run["trainer"].step > 1
    first, last = rates.seen[0][0], rates.seen[-1][0]
    assert first == pytest.approx(run["trainer"].cfg.optim_g.lr, rel=0.2)
    assert last < 0.25 * first  # the last step ran near the end of the 3 s
