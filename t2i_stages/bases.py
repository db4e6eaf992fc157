"""Base classes a plugin may subclass: a discriminator and a matcher.

The core calls components through these interfaces (the training step's critic adapter calls a
discriminator's heads, the matcher's prepare step and checkpoints call a matcher's encoders and
``trainable_state_dict``), so a third-party component fits by subclassing them, or by giving
the same methods. Metrics subclass ``evaluation.context.StreamingMetric``. Plugins import all
three from ``t2i_stages.plugin``.
"""

from __future__ import annotations

import torch
from torch import nn

from .types import ImageFeatures, TextFeatures


class DiscriminatorBase(nn.Module):
    """``features = D(images)``; ``D.condition(text)``; ``D.uncond_logits(f)``; ``D.cond_logits(f, c)``.

    Logits are raw scores (B,) — apply a sigmoid for the reference's probabilities (or use
    ``binary_cross_entropy_with_logits``, the same loss computed stably). A head that is absent
    (or, for a conditional head, has no conditioning level to feed it) returns None.
    ``has_uncond`` / ``has_cond`` tell a loss which heads it can use; ``resolution`` is the image
    side the D expects and ``conditioning`` the level its conditional head reads.
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


class Matcher(nn.Module):
    """An image-text matcher.

    ``encode_text(tokens (B,T) int64, mask (B,T) bool) -> TextFeatures`` and
    ``encode_image(images in [-1, 1], any size) -> ImageFeatures``; both in one space of size
    ``text_dim``. ``trained`` tells whether weights were loaded or trained; a matcher's
    pretraining is its ``ComponentSpec(prepare=...)`` step.
    """

    text_dim: int

    def __init__(self) -> None:
        super().__init__()
        self.trained = False

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        raise NotImplementedError

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[ImageFeatures, TextFeatures]:
        return self.encode_image(images), self.encode_text(tokens, mask)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters that train plus all buffers (what a pretraining cache must keep).

        Frozen pretrained weights (CLIP, Inception) are left out: they are re-read from their
        local files when the matcher is built.
        """
        out: dict[str, torch.Tensor] = {}
        seen: set[int] = set()  # a module registered twice (shared towers) is saved once
        for name, t in self.state_dict(keep_vars=True).items():
            if id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(t, nn.Parameter):
                if t.requires_grad:
                    out[name] = t.detach()
            elif not self.is_frozen_buffer(name):
                out[name] = t.detach()
        return out

    def is_frozen_buffer(self, name: str) -> bool:
        """Whether buffer ``name`` belongs to a frozen pretrained backbone (re-read from its
        file, so not cached); override where the matcher has one."""
        return False
