"""Image resizing shared by the built-in matchers' image sides."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B, 3, H, W) images to size x size (no-op when already there)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
