"""The reference code's spectral norm (DM-GAN's and GR-GAN's ``code/spectral.py``), as a
drop-in replacement for the power iteration of torch's spectral-norm parametrization.

Both normalise a conv weight W (viewed as ``(out, in*k*k)``) by ``sigma = u . W v`` after one
power iteration, and both store ``u`` and ``v``; they differ in what the iteration does:

- torch (``torch.nn.utils.parametrizations.spectral_norm``): ``u = normalize(W v)`` first, then
  ``v = normalize(W^T u)``, and only in training mode (an eval-mode forward keeps u and v);
- the reference: ``v = normalize(W^T u)`` first, then ``u = normalize(W v)``, in *every*
  forward (eval mode and ``no_grad`` too), with ``x / (|x| + 1e-12)`` as the normalisation. The
  stored ``v`` therefore never affects the output: only ``u`` carries over between calls.

``use_reference_power_iteration`` swaps the reference iteration into every spectral-normalised
weight of a module that torch's parametrization built, keeping its ``_u`` / ``_v`` buffers
(same state-dict keys, same initial values), so a checkpoint reads the same either way.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

EPS = 1e-12  # the reference's l2normalize eps, added to the norm


def _l2normalize(x: torch.Tensor) -> torch.Tensor:
    return x / (x.norm() + EPS)


class ReferencePowerIteration(nn.Module):
    """Parametrization ``W -> W / sigma`` with the reference's power iteration (see module doc)."""

    def __init__(self, u: torch.Tensor, v: torch.Tensor):
        super().__init__()
        self.register_buffer("_u", u.detach().clone())
        self.register_buffer("_v", v.detach().clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight.flatten(1)
        with torch.no_grad():
            v = _l2normalize(torch.mv(mat.t(), self._u))
            u = _l2normalize(torch.mv(mat, v))
            self._v.copy_(v)
            self._u.copy_(u)
        # clones: the buffers change in place at the next call, the graph must not see that
        sigma = torch.dot(self._u.clone(), torch.mv(mat, self._v.clone()))
        return weight / sigma


def use_reference_power_iteration(module: nn.Module) -> int:
    """Replace the power iteration of every spectral-normalised ``weight`` under ``module``
    (torch's parametrization) with the reference's; returns how many were replaced."""
    count = 0
    for m in module.modules():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        plist = m.parametrizations.weight
        for i, p in enumerate(plist):
            if hasattr(p, "_u") and hasattr(p, "_v") and not isinstance(p, ReferencePowerIteration):
                plist[i] = ReferencePowerIteration(p._u, p._v)
                count += 1
    return count


class DeferredPowerIteration(nn.Module):
    """Parametrization ``W -> W / (u . W v)`` whose u and v the container's batched power
    iteration (``BatchedPowerIterations``) has already advanced for this forward.

    Same buffers (``_u``, ``_v``) and so the same state-dict keys as the parametrization it
    replaces; ``reference`` says which one: torch's advances u and v in training mode only, the
    reference code's in every forward.
    """

    def __init__(self, u: torch.Tensor, v: torch.Tensor, reference: bool, eps: float):
        super().__init__()
        self.register_buffer("_u", u.detach().clone())
        self.register_buffer("_v", v.detach().clone())
        self.reference, self.eps = reference, eps
        # this forward's u and v, as the batched step computed them (the buffers hold copies):
        # reading them back from the just-mutated buffers breaks torch.compile's backward
        self.fresh: tuple[torch.Tensor, torch.Tensor] | None = None

    def iterates(self) -> bool:
        return self.reference or self.training

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight.flatten(1)
        if self.fresh is not None:
            (u, v), self.fresh = self.fresh, None
        else:
            u = self._u.clone(memory_format=torch.contiguous_format)
            v = self._v.clone(memory_format=torch.contiguous_format)
        if self.reference:
            sigma = torch.dot(u, torch.mv(mat, v))
        else:
            sigma = torch.vdot(u, torch.mv(mat, v))
        return weight / sigma


class BatchedPowerIterations:
    """Forward pre-hook of a container: one power-iteration step for all of its spectral-normed
    weights at once, each normalisation a single multi-tensor op over every u (then every v)
    instead of one chain of small ops per weight.

    Valid for a container whose forward reads each of those weights exactly once (a plain
    ``nn.Sequential`` of layers, as a discriminator's trunk), so that every weight still
    advances once per forward, as with its own parametrization. The matrix-vector products stay
    one per weight (the shapes differ). The results equal the per-weight iteration to float
    rounding (bit for bit on the CPU, where the multi-tensor norm runs the same kernel per tensor).
    """

    def __init__(self, parts: list[tuple[nn.Module, DeferredPowerIteration]]):
        self.parts = parts  # (the parametrized module, its deferred parametrization)

    @torch.no_grad()
    def __call__(self, module: nn.Module, args: tuple) -> None:
        live = [(m, p) for m, p in self.parts if p.iterates()]
        for key in dict.fromkeys((p.reference, p.eps) for _, p in live):
            group = [(m, p) for m, p in live if (p.reference, p.eps) == key]
            reference, eps = key
            mats = [m.parametrizations.weight.original.flatten(1) for m, _ in group]
            us, vs = [p._u for _, p in group], [p._v for _, p in group]
            if reference:  # v = normalize(W^T u), then u = normalize(W v), x / (|x| + eps)
                new_v = _normalized([torch.mv(w.t(), u) for w, u in zip(mats, us, strict=True)])
                new_u = _normalized([torch.mv(w, v) for w, v in zip(mats, new_v, strict=True)])
            else:  # torch: u = normalize(W v), then v = normalize(W^H u), x / max(|x|, eps)
                new_u = _normalized([torch.mv(w, v) for w, v in zip(mats, vs, strict=True)], eps)
                new_v = _normalized(
                    [torch.mv(w.H, u) for w, u in zip(mats, new_u, strict=True)], eps
                )
            torch._foreach_copy_(us, new_u)
            torch._foreach_copy_(vs, new_v)
            for (_, p), u, v in zip(group, new_u, new_v, strict=True):
                p.fresh = (u, v)


def _normalized(xs: list[torch.Tensor], clamp: float | None = None) -> list[torch.Tensor]:
    """Each x over its 2-norm: ``x / max(|x|, clamp)`` (torch's F.normalize), or with
    ``clamp`` None ``x / (|x| + EPS)`` (the reference's l2normalize)."""
    norms = torch._foreach_norm(xs, 2)
    if clamp is None:
        torch._foreach_add_(norms, EPS)
    else:
        torch._foreach_clamp_min_(norms, clamp)
    return torch._foreach_div(xs, norms)


def batch_power_iterations(container: nn.Module) -> int:
    """Make ``container``'s spectral-normalised weights (torch's parametrization or the
    reference's) advance together in a forward pre-hook (``BatchedPowerIterations``); returns
    how many. Same buffers and state-dict keys."""
    parts = []
    for m in container.modules():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        plist = m.parametrizations.weight
        for i, p in enumerate(plist):
            if isinstance(p, ReferencePowerIteration):
                deferred = DeferredPowerIteration(p._u, p._v, True, EPS)
            elif hasattr(p, "_u") and hasattr(p, "_v") and getattr(p, "n_power_iterations", 1) == 1:
                deferred = DeferredPowerIteration(p._u, p._v, False, p.eps)
            else:
                continue
            deferred.train(p.training)
            plist[i] = deferred
            parts.append((m, deferred))
    if parts:
        container.register_forward_pre_hook(BatchedPowerIterations(parts))
    return len(parts)
