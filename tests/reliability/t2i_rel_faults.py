"""Test-only fault injection, installed like a third-party plugin (a fake dist-info).

Nothing in the package can inject faults: these losses exist only when a test puts this module
and its dist-info on the path. ``nan_loss`` turns NaN (in its value, or only in its gradient)
from its ``at``-th call on; ``boom_loss`` raises while it is being built (``cxx_loss`` too, with a C++-style message of
many lines, as torch gives for a huge allocation).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from t2i_stages import ComponentSpec, Params, hookimpl


class NaNLossParams(Params):
    """A zero-valued loss that becomes non-finite from its ``at``-th call on."""

    at: int = Field(1, ge=1, description="1-based call from which the fault appears.")
    until: int | None = Field(None, description="Last faulty call (null: every call after 'at').")
    mode: Literal["loss", "grad"] = Field("loss", description="NaN in the value or the gradient.")
    role: Literal["matching", "adversarial"] = Field("matching", description="Engine role.")


class _NaNGrad(torch.autograd.Function):
    """Identity forward; NaN gradient backward (a finite loss with a poisoned gradient)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class NaNLoss:
    def __init__(self, params: NaNLossParams):
        self.params, self.role, self.calls = params, params.role, 0

    def _fault(self, base: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        p = self.params
        active = self.calls >= p.at and (p.until is None or self.calls <= p.until)
        if not active:
            return base * 0.0
        if p.mode == "loss":
            return base * 0.0 + float("nan")
        return _NaNGrad.apply(base * 0.0)

    # matching role: loss(image_features, text, class_ids)
    def __call__(self, feats, text, class_id=None) -> torch.Tensor:
        return self._fault(feats.code.float().mean())

    # adversarial role: counted on D's calls only
    def d_loss(self, critic, real, fake, cond) -> torch.Tensor:
        return self._fault(critic.features(real).float().mean())

    def g_loss(self, critic, fake, cond) -> torch.Tensor:
        return critic.features(fake).float().mean() * 0.0


class BoomParams(Params):
    """A loss whose construction fails."""


def _boom(params, **ctx):
    raise RuntimeError("boom while building")


def _cxx(params, **ctx):
    frames = "".join(f"\nframe #{i}: c10::Error at 0x{i:04x}" for i in range(20))
    raise RuntimeError(f"[enforce fail at alloc_cpu.cpp:117] out of memory{frames}")


@hookimpl
def t2i_stages_losses() -> dict[str, ComponentSpec]:
    return {
        "nan_loss": ComponentSpec(lambda p, **ctx: NaNLoss(p), NaNLossParams, "test only"),
        "boom_loss": ComponentSpec(_boom, BoomParams, "test only: fails to build"),
        "cxx_loss": ComponentSpec(_cxx, BoomParams, "test only: fails with C++ frames"),
    }
