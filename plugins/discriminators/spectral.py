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
