"""Learning-rate decay over a run, for step-bound and time-bound runs alike.

A GAN trained at a constant rate keeps oscillating around its equilibrium, and in a short run
that shows as grain; lowering both players' rates towards the end lets them settle. The rate is
a function of the run's progress only (no scheduler state to checkpoint), so a resumed
step-bound run follows the same rates as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..recipe import LRScheduleConfig


def run_progress(
    step: int, max_steps: int, elapsed_s: float = 0.0, max_minutes: float | None = None
) -> float:
    """The run's progress in [0, 1]: by steps, or by the clock where that is further along."""
    by_steps = step / max_steps if max_steps > 0 else 1.0
    by_clock = elapsed_s / (60 * max_minutes) if max_minutes else 0.0
    return min(1.0, max(by_steps, by_clock))


def lr_factor(cfg: LRScheduleConfig, progress: float) -> float:
    """The fraction of the optimizers' lr to use at ``progress``."""
    if cfg.kind == "constant" or progress <= cfg.start:
        return 1.0
    u = min(1.0, (progress - cfg.start) / (1.0 - cfg.start))
    if cfg.kind == "linear":
        return 1.0 - (1.0 - cfg.final) * u
    return cfg.final + (1.0 - cfg.final) * 0.5 * (1.0 + math.cos(math.pi * u))


def set_lr(optimizers: Sequence[tuple[torch.optim.Optimizer, float]], factor: float) -> None:
    """Set every parameter group of each ``(optimizer, base lr)`` to ``base lr * factor``."""
    for opt, base in optimizers:
        for group in opt.param_groups:
            group["lr"] = base * factor
