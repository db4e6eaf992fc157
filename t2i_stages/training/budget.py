"""How long a run will take, and why it stopped.

A run with ``train.max_minutes`` may stop long before ``max_steps`` on a slow machine (an
AVX2-only CPU ran the demo's bf16 step 14x slower), and an undertrained model must never pass
for a finished one: ``StepClock`` prints an estimate from the first measured steps, and
``StopReason`` says in the console, ``metrics.json`` and ``report.html`` what stopped the run,
at which step, how fast it went and what to change.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass
class StopReason:
    """What ended the training loop: ``max_steps``, ``max_minutes`` or a ``signal``."""

    by: str
    step: int
    max_steps: int
    minutes: float
    images_per_s: float | None = None
    max_minutes: float | None = None
    signal: str | None = None

    @property
    def short(self) -> bool:
        """True when the run stopped before its ``max_steps``."""
        return self.step < self.max_steps

    def text(self) -> str:
        by = f"signal {self.signal}" if self.by == "signal" else self.by
        return f"{by} at step {self.step} of {self.max_steps}"

    def advice(self) -> str | None:
        """What to change, for a run that a time cap cut short."""
        if self.by != "max_minutes" or not self.short:
            return None
        speed = f"{self.images_per_s:.1f} images/s" if self.images_per_s else "this speed"
        need = ""
        if self.step and self.minutes:
            need = f"; the {self.max_steps} steps need about {self.minutes * self.max_steps / self.step:.0f} min"
        return (
            f"train.max_minutes {self.max_minutes:g} stopped training at step {self.step} of "
            f"{self.max_steps} ({speed}{need}). The model is undertrained: raise train.max_minutes "
            "(--set train.max_minutes=N; resumed with --resume, the run counts the minutes it "
            "has trained), or see `t2i-stages env` for the precision and threads this machine "
            "runs"
        )

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["text"] = self.text()
        advice = self.advice()
        if advice:
            out["advice"] = advice
        return out


class StepClock:
    """Measures the first steps after a (re)start and estimates the run's length once.

    The first step pays for lazy initialisation (kernels, allocator, data caches), so the
    estimate uses the steps after it.
    """

    def __init__(
        self,
        start_step: int,
        max_steps: int,
        max_minutes: float | None,
        batch: int,
        spent_s: float = 0.0,
    ):
        self.start_step, self.max_steps = start_step, max_steps
        self.max_minutes, self.batch = max_minutes, batch
        self.spent_s = spent_s  # a resumed run's training seconds before this start
        self.marks: list[float] = []
        self.seconds_per_step: float | None = None

    def tick(self, step: int) -> str | None:
        """Call after each step; returns the estimate line once, after the third step."""
        if self.seconds_per_step is not None:
            return None
        self.marks.append(time.perf_counter())
        if len(self.marks) < 3 and (step < self.max_steps or len(self.marks) < 2):
            return None
        self.seconds_per_step = (self.marks[-1] - self.marks[0]) / (len(self.marks) - 1)
        return self.estimate()

    def estimate(self) -> str:
        s = self.seconds_per_step or 0.0
        left = self.max_steps - self.start_step
        minutes = s * left / 60
        line = (
            f"measured step: {s:.3f} s ({self.batch / max(s, 1e-9):.1f} images/s); "
            f"{left} steps to go take about {minutes:.1f} min"
        )
        budget_s = None if self.max_minutes is None else self.max_minutes * 60 - self.spent_s
        if budget_s is not None and minutes * 60 > budget_s:
            reach = self.start_step + max(int(budget_s / max(s, 1e-9)), 1)
            line += (
                f"; train.max_minutes {self.max_minutes:g} will stop it near step {reach} of "
                f"{self.max_steps} (undertrained: raise max_minutes, or see `t2i-stages env`)"
            )
        return line


def stop_banner(reason: StopReason) -> str:
    """The loud console form of a run that a time cap cut short."""
    advice = reason.advice() or reason.text()
    bar = "!" * 78
    return f"{bar}\nSTOPPED EARLY: {reason.text()}\n{advice}\n{bar}"
