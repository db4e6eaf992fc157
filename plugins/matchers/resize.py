"""Image resizing shared by the built-in matchers' image sides."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_images(images: torch.Tensor, size: int, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of (B, 3, H, W) images to size x size (no-op when already there);
    ``align_corners=True`` is the DAMSM references' resize (``DamsmParams.resize_align_corners``)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=align_corners)
