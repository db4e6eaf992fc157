"""Weight initialisations, chosen per model by a params field so a recipe can match its reference.

The rule: a built-in model's ``init`` reaches the modules of the built-in components only. The
walk stops at a module whose class is defined outside t2i-stages and torch (a third-party stage,
fusion block or conditioning level, a Hugging Face model): such a component keeps the weights
its factory gave it, and so does everything inside it. A plugin that initialises itself (a
zero-initialised gate, say) is therefore never overwritten; one that does not keeps torch's
defaults.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from .params import InitName


def _weight(m: nn.Module) -> torch.Tensor:
    # With torch's spectral-norm parametrization the trainable tensor is `original`.
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


INIT_OWNERS = ("t2i_stages", "torch")
"""Top-level packages whose module classes a built-in ``init`` may initialise."""


def initialises_itself(module: nn.Module) -> bool:
    """Whether ``module`` is a component from another package (its class is defined outside
    ``INIT_OWNERS``), which keeps its own initialisation."""
    return type(module).__module__.split(".")[0] not in INIT_OWNERS


def own_modules(root: nn.Module) -> Iterator[nn.Module]:
    """``root.modules()`` (the same pre-order, each module once) without the subtrees of
    components that initialise themselves."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        if m is not root and initialises_itself(m):
            continue
        yield m
        stack.extend(reversed(list(m.children())))


@torch.no_grad()
def reference_init(module: nn.Module) -> None:
    """The StackGAN++/AttnGAN ``weights_init``: what AttnGAN and DM-GAN apply to G and Ds.

    Conv: orthogonal (gain 1), bias left as built; BatchNorm: weight ~ N(1, 0.02), bias 0;
    Linear: orthogonal, bias 0. Spectral-normalised convs get their original weight initialised
    (DM-GAN's Python-2 code does the same to ``weight_bar``). Components from other packages
    are left as they are (``own_modules``).
    """
    for m in own_modules(module):
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
