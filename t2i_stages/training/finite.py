"""The non-finite guard: a NaN/inf loss term or gradient never reaches the weights.

Two modes (``train.finite_check``):

- ``step``: one device-to-host sync per update reduces every loss term and the max |grad| of
  every parameter to one flag; a bad update is dropped and its first bad term named.
- ``deferred``: no sync; the flag stays on the device and the fused optimizers skip their
  update when it is set (as under a GradScaler); the running tally is read at logging steps.

Either way ``train.skip_nonfinite`` updates may be dropped before the run stops with a
``DivergenceError`` that points at the last good checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import T2IError


class DivergenceError(T2IError):
    """A loss or gradient became NaN or infinite."""


Modules = list[tuple[str, torch.nn.Module]]  # (what to call it in a message, module)
Terms = dict[str, torch.Tensor]  # every loss term of one update, by its full name


class FiniteGuard:
    """Checks each update before its optimizer step; counts and limits the dropped ones."""

    def __init__(
        self,
        mode: str,
        limit: int,
        device: torch.device,
        any_rank: Callable[[bool], bool],
        distributed: bool,
        checkpoints: Path,
        log: Callable[[str], None] = print,
    ):
        self.deferred = mode == "deferred"
        self.limit = limit
        self.any_rank, self.distributed = any_rank, distributed
        self.checkpoints, self.log = checkpoints, log
        self.skipped = 0  # updates dropped so far (what checkpoints record)
        self.tally = torch.zeros((), device=device)  # deferred mode: device-side count
        self.checked_step = 0  # deferred mode: the step the tally was last read at

    def restore(self, skipped: int, step: int) -> None:
        """Continue a resumed run's count."""
        self.skipped = skipped
        self.tally.fill_(float(skipped))
        self.checked_step = step

    def guard(
        self,
        terms: Terms,
        modules: Modules,
        optimizers: list[torch.optim.Optimizer],
        drop: list[torch.optim.Optimizer],
        logs: dict[str, torch.Tensor],
        step: int,
    ) -> dict[str, torch.Tensor] | None:
        """None when ``optimizers`` may step; else the logs of a dropped update.

        ``drop`` are the optimizers whose gradients a dropped update clears.
        """
        if self.deferred:
            self._flag_on_device(terms, modules, optimizers)
            return None
        problem = self.first_nonfinite(terms, modules)
        if problem is None:
            return None
        return self._skip(problem, logs, drop, step)

    def first_nonfinite(self, terms: Terms, modules: Modules) -> str | None:
        """Name the first NaN/inf loss term or gradient of this update, or None if all is finite.

        The common case costs one sync: every term and the max |grad| of every parameter are
        reduced to one flag, agreed between ranks so that all skip or stop together.
        """
        grads = [
            [(n, p.grad) for n, p in m.named_parameters() if p.grad is not None] for _, m in modules
        ]
        maxes = [
            torch._foreach_norm([g for _, g in gs], float("inf")) if gs else [] for gs in grads
        ]
        values = [t.float().reshape(()) for t in terms.values() if torch.is_tensor(t)]
        values += [x.float() for ms in maxes for x in ms]
        local_bad = bool(values) and not bool(torch.isfinite(torch.stack(values)).all())
        if not self.any_rank(local_bad):
            return None
        if not local_bad:
            return "another rank reported a non-finite loss or gradient"
        for name, v in terms.items():
            if torch.is_tensor(v) and not torch.isfinite(v).all():
                return f"{name} is {v.float().item()}"
        for (what, _), gs, ms in zip(modules, grads, maxes, strict=True):
            bad = [n for (n, _), x in zip(gs, ms, strict=True) if not torch.isfinite(x)]
            if bad:
                parts = sorted({".".join(n.split(".")[:2]) for n in bad})
                return (
                    f"{what} gradient is not finite in {len(bad)} parameter(s) under "
                    f"{', '.join(parts)} (first: '{bad[0]}'), though every loss term was finite"
                )
        return "a loss or gradient is not finite"

    def _flag_on_device(
        self, terms: Terms, modules: Modules, optimizers: list[torch.optim.Optimizer]
    ) -> None:
        """Hand the fused optimizers a device flag (1.0 when anything is NaN/inf) that drops
        the update, and add it to the tally; no host sync."""
        grads = [p.grad for _, m in modules for p in m.parameters() if p.grad is not None]
        values = [t.float().reshape(()) for t in terms.values() if torch.is_tensor(t)]
        if grads:
            values += [x.float() for x in torch._foreach_norm(grads, float("inf"))]
        if not values:
            return
        flag = (~torch.isfinite(torch.stack(values)).all()).float()
        if self.distributed:  # every rank drops the update together
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        for opt in optimizers:
            opt.found_inf = flag
        self.tally += flag

    def _skip(
        self, problem: str, logs: dict, drop: list[torch.optim.Optimizer], step: int
    ) -> dict[str, torch.Tensor]:
        """Drop this update (``train.skip_nonfinite`` allows it) or stop the run."""
        where = f"step {step + 1}: {problem}"
        for opt in drop:
            opt.zero_grad(set_to_none=True)
        if self.skipped >= self.limit:
            after = (
                f" after skipping {self.limit} update(s) (train.skip_nonfinite)"
                if self.limit
                else ""
            )
            raise DivergenceError(
                f"{where}; training stopped{after}. The last good checkpoint is kept in "
                f"{self.checkpoints}"
            )
        self.skipped += 1
        self.log(
            f"warning: {where}; update skipped ({self.skipped} of {self.limit} allowed by "
            "train.skip_nonfinite)"
        )
        kept = {k: v for k, v in logs.items() if torch.is_tensor(v) and torch.isfinite(v).all()}
        kept["nonfinite_skipped"] = torch.tensor(float(self.skipped))
        return kept

    def read(self, step: int) -> None:
        """Deferred mode: read the tally (one sync); stop past ``train.skip_nonfinite``."""
        if not self.deferred:
            return
        count = int(self.tally.item())
        new = count - self.skipped
        since, self.checked_step = self.checked_step, step
        if new <= 0:
            return
        self.skipped = count
        where = f"steps {since + 1}..{step}: {new} update(s) had a non-finite loss or gradient"
        if count > self.limit:
            raise DivergenceError(
                f"{where} (dropped on the device; train.finite_check 'deferred' does not name the "
                f"term: resume with finite_check 'step' to find it); {count} in all, more than "
                f"train.skip_nonfinite {self.limit}; training stopped. The last good checkpoint is "
                f"kept in {self.checkpoints}"
            )
        self.log(
            f"warning: {where}; dropped ({count} of {self.limit} allowed by train.skip_nonfinite)"
        )
