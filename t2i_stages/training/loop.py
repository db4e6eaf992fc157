"""The training loop: steps until ``max_steps``, the time budget, a signal or a callback says stop.

What a run does besides stepping (the run folder's scalars, sample grids, the end-of-run
report; a benchmark's evaluations at time marks) goes through callbacks, so nothing copies
this loop. Checkpoints and the deferred non-finite check are the loop's own: a checkpoint is
never written past an unreported divergence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..checkpoint import list_checkpoints
from .budget import StepClock, StopReason, stop_banner

if TYPE_CHECKING:
    from pathlib import Path

    from .trainer import Trainer


class Callback:
    """Override what you need; the loop calls every callback in order.

    ``on_step`` runs after every step with its loss tensors and may return True to stop the run
    (it then ends as ``stopped_by: callback``, with a checkpoint).
    """

    def on_step(self, trainer: Trainer, logs: dict[str, Any]) -> bool | None:
        return None

    def on_log(self, trainer: Trainer, values: dict[str, float]) -> None:
        """Every ``train.log_every`` steps: the logged scalars (with ``images_per_s``)."""

    def on_sample(self, trainer: Trainer) -> None:
        """Every ``train.sample_every`` steps, and once at the end."""

    def on_checkpoint(self, trainer: Trainer, path: Path | None) -> None:
        """After each checkpoint (``path`` is None on ranks other than 0)."""

    def on_eval(self, trainer: Trainer) -> None:
        """Every ``eval_every`` steps, when ``fit`` is given one."""

    def on_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """Once, after the last checkpoint; ``trainer.stop`` says why training ended."""


def fit(
    trainer: Trainer, callbacks: Sequence[Callback] = (), eval_every: int | None = None
) -> dict[str, Any]:
    """Train ``trainer`` until it should stop; returns the run's summary."""
    cfg, rt = trainer.cfg, trainer.runtime
    progress = None
    if rt.is_main:
        from tqdm import tqdm

        progress = tqdm(total=cfg.max_steps, initial=trainer.step, desc="train", dynamic_ncols=True)
    trainer.stops.install()
    start = time.time() - trainer.train_seconds  # a resumed run continues its clock
    batches = trainer.batches()
    images_seen, t_last = 0, time.time()
    saved = trainer.step if list_checkpoints(trainer.out / "checkpoints") else -1
    clock = StepClock(
        trainer.step, cfg.max_steps, cfg.max_minutes, trainer.recipe.data.batch_size,
        spent_s=trainer.train_seconds,
    )  # fmt: skip
    over_time = asked = False

    def checkpoint() -> None:
        nonlocal saved
        trainer.guard.read(trainer.step)  # never checkpoint past an unreported divergence
        trainer.train_seconds = time.time() - start
        path = trainer.save()
        saved = trainer.step
        for cb in callbacks:
            cb.on_checkpoint(trainer, path)

    try:
        while trainer.step < cfg.max_steps:
            group = [trainer.to_device(next(batches)) for _ in range(cfg.grad_accum)]
            lr_scale = trainer.schedule_lr(time.time() - start)
            logs = trainer.train_step(group)
            trainer.step += 1
            images_seen += sum(b["tokens"].shape[0] for b in group) * rt.world_size
            if progress is not None:
                progress.update(1)
            estimate = clock.tick(trainer.step)
            if estimate and progress is not None:
                progress.write(estimate)
            if trainer.step % cfg.log_every == 0 or trainer.step == cfg.max_steps:
                trainer.guard.read(trainer.step)
                values = {k: float(v) for k, v in logs.items()}
                now = time.time()
                values["images_per_s"] = images_seen / max(now - t_last, 1e-9)
                if cfg.lr_schedule.kind != "constant":
                    values["lr_scale"] = lr_scale
                images_seen, t_last = 0, now
                for name, v in values.items():
                    trainer.history.setdefault(name, []).append((trainer.step, v))
                if progress is not None:
                    short = {
                        k: f"{v:.3g}"
                        for k, v in values.items()
                        if not k.startswith("G") or k == "G_total"
                    }
                    progress.set_postfix(short, refresh=False)
                for cb in callbacks:
                    cb.on_log(trainer, values)
            if trainer.step % cfg.sample_every == 0:
                for cb in callbacks:
                    cb.on_sample(trainer)
            if eval_every and trainer.step % eval_every == 0:
                for cb in callbacks:
                    cb.on_eval(trainer)
            if trainer.step % cfg.ckpt_every == 0:
                checkpoint()
            asked = any([bool(cb.on_step(trainer, logs)) for cb in callbacks]) or asked
            over_time = cfg.max_minutes is not None and (time.time() - start) > 60 * cfg.max_minutes
            if rt.any_rank(over_time or asked or trainer.stops.signal is not None):
                break
        if saved != trainer.step:  # the signal handlers stay until this checkpoint is on disk
            checkpoint()
    finally:
        # shut the DataLoader workers down now: at interpreter exit multiprocessing would
        # SIGTERM them, which they ignore, and then wait for them forever
        batches.close()
        if progress is not None:
            progress.close()
        trainer.stops.restore()
    return _finish(trainer, callbacks, time.time() - start, clock, over_time, asked)


def _finish(
    trainer: Trainer,
    callbacks: Sequence[Callback],
    seconds: float,
    clock: StepClock,
    over_time: bool,
    asked: bool,
) -> dict[str, Any]:
    cfg, signal = trainer.cfg, trainer.stops.signal
    by = (
        "signal" if signal else "max_minutes" if over_time else "callback" if asked else "max_steps"
    )
    speed = clock.batch / clock.seconds_per_step if clock.seconds_per_step else None
    trainer.stop = StopReason(
        by, trainer.step, cfg.max_steps, seconds / 60, speed, cfg.max_minutes, signal
    )
    summary: dict[str, Any] = {
        "step": trainer.step,
        "seconds": seconds,
        "signal": signal,
        "skipped_nonfinite": trainer.guard.skipped,
        "stopped_by": trainer.stop.text(),
        "stop": trainer.stop.to_dict(),
    }
    for cb in callbacks:
        cb.on_end(trainer, summary)
    if trainer.stop.advice():
        trainer.log(stop_banner(trainer.stop))
    if signal:
        command = trainer.resume_command or f"t2i-stages run RECIPE --resume {trainer.out}"
        summary["resume_command"] = command
        trainer.log(
            f"stopped by {signal} at step {trainer.step}; checkpoint written. Resume with: {command}"
        )
    return summary
