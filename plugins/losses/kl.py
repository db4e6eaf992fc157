"""The conditioning-augmentation KL term (architectures.md §6.3)."""

from __future__ import annotations

import torch

from .params import KLParams


class CAKL:
    role = "kl"

    def __init__(self, params: KLParams):
        self.params = params

    def __call__(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        mu, logvar = mu.float(), logvar.float()
        return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()


def build_kl(params: KLParams, **ctx) -> CAKL:
    return CAKL(params)
