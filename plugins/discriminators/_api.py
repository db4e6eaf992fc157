"""What every built-in discriminator offers the training engine (documented in the package)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.types import TextFeatures


class DiscriminatorBase(nn.Module):
    """``features = D(images)``; ``D.condition(text)``; ``D.uncond_logits(f)``; ``D.cond_logits(f, c)``.

    Logits are raw scores (B,) — apply a sigmoid for the reference's probabilities (or use
    ``binary_cross_entropy_with_logits``, the same loss computed stably). A head that is absent
    (or, for a conditional head, has no conditioning level to feed it) returns None.
    """

    resolution: int
    conditioning: nn.Module

    @property
    def has_uncond(self) -> bool:
        return False

    @property
    def has_cond(self) -> bool:
        return False

    def condition(self, text: TextFeatures) -> torch.Tensor | None:
        """The vector (B, D) this D's conditional head compares images with, from the text."""
        if not self.has_cond:
            return None
        return self.conditioning(text).vector

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        return None

    def cond_logits(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor | None:
        return None


def resolve_resolution(name: str, params_res: int | None, ctx: dict[str, Any]) -> int:
    """The resolution from params, else from the builder's context; a clear error otherwise."""
    res = params_res if params_res is not None else ctx.get("resolution")
    if res is None:
        raise ValueError(
            f"discriminator '{name}' needs a resolution: set params.resolution or build it with "
            "resolution=<the generator stage's size>"
        )
    res = int(res)
    if res < 8 or res & (res - 1):
        raise ValueError(f"discriminator '{name}': resolution {res} is not a power of two >= 8")
    return res
