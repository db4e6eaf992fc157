"""What every built-in matcher shares: the two encoding sides and pretraining bookkeeping."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2i_stages.types import ImageFeatures, TextFeatures


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B, 3, H, W) images to size x size (no-op when already there)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


class Matcher(nn.Module):
    """An image-text matcher.

    ``encode_text(tokens (B,T) int64, mask (B,T) bool) -> TextFeatures`` and
    ``encode_image(images in [-1, 1], any size) -> ImageFeatures``; both in one space of size
    ``text_dim``. ``pretrain`` holds the matcher's pretraining settings (see
    ``pretrain/``) and ``trained`` tells whether weights were loaded or trained.
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
            elif not self._frozen_buffer(name):
                out[name] = t.detach()
        return out

    def _frozen_buffer(self, name: str) -> bool:
        """Buffers of a frozen pretrained backbone (overridden where one exists)."""
        return False
