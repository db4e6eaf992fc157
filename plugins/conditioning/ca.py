"""Conditioning augmentation (StackGAN's CA_NET), with its epsilon as an explicit input.

The sentence vector goes through Linear(nef -> 4*c_dim) and a GLU; the first c_dim outputs are
the mean, the next c_dim the log-variance, and ``c = mu + exp(logvar / 2) * eps``. The caller
samples ``eps ~ N(0, I)`` (B, c_dim); nothing random is drawn inside ``forward``, so a generator
using CA exports to ONNX deterministically. ``eps=None`` gives ``c = mu`` (the mean condition).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import Condition, TextFeatures
from t2i_stages.plugins.common.layers import GLU

from .params import CAParams


class ConditioningAugmentation(nn.Module):
    """CA: gives ``Condition(vector=c, mu=mu, logvar=logvar)`` from the sentence vector."""

    provides = "vector"

    def __init__(self, text_dim: int, c_dim: int = 100):
        super().__init__()
        self.c_dim = c_dim
        self.dim = c_dim
        self.eps_dim = c_dim
        self.fc = nn.Linear(text_dim, c_dim * 4, bias=True)
        self.glu = GLU()

    def forward(self, text: TextFeatures, eps: torch.Tensor | None = None) -> Condition:
        x = self.glu(self.fc(text.sentence))
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        c = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        return Condition(vector=c, mu=mu, logvar=logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) averaged over batch *and* entries, as the reference (§6.3)."""
    return torch.mean(-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()))


def build_ca(params: CAParams, text_dim: int | None = None, **ctx: Any) -> ConditioningAugmentation:
    if text_dim is None:
        raise ValueError("conditioning 'ca' needs text_dim (the sentence size) from its caller")
    return ConditioningAugmentation(text_dim, params.c_dim)
