"""Weight initialisations, chosen per model by a params field so a recipe can match its reference."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

InitName = Literal["orthogonal", "pytorch"]


def _weight(m: nn.Module) -> torch.Tensor:
    # With torch's spectral-norm parametrization the trainable tensor is `original`.
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


@torch.no_grad()
def reference_init(module: nn.Module) -> None:
    """The StackGAN++/AttnGAN ``weights_init``: what AttnGAN and DM-GAN apply to G and Ds.

    Conv: orthogonal (gain 1), bias left as built; BatchNorm: weight ~ N(1, 0.02), bias 0;
    Linear: orthogonal, bias 0. Spectral-normalised convs get their original weight initialised
    (DM-GAN's Python-2 code does the same to ``weight_bar``).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.orthogonal_(_weight(m), 1.0)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                m.weight.normal_(1.0, 0.02)
                m.bias.zero_()
        elif isinstance(m, nn.Linear):
            nn.init.orthogonal_(_weight(m), 1.0)
            if m.bias is not None:
                m.bias.zero_()


def apply_init(module: nn.Module, name: InitName) -> nn.Module:
    """Apply the named initialisation ('pytorch' keeps torch's defaults) and return the module.

    A module built on the meta device (shapes only: validation, summaries) is left as it is;
    initialising it would compute nothing, and load torch's reference kernels for seconds.
    """
    if any(p.is_meta for p in module.parameters()):
        return module
    if name == "orthogonal":
        reference_init(module)
    elif name != "pytorch":
        raise ValueError(f"unknown init '{name}' (choose orthogonal or pytorch)")
    return module
