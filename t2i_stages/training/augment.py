"""Differentiable augmentation of what the discriminators see (DiffAugment, Zhao et al. 2020).

A discriminator trained on few images memorises them and stops teaching the generator; one
that only ever sees randomly shifted, recoloured and cut-out images (real and generated alike,
in D's update and in G's) cannot. Every transform here is differentiable in the images, so G
learns through it, and draws its randomness from the run's noise generator (checkpointed, so a
resumed run augments as the uninterrupted one). ``train.augment.policy`` lists the transforms;
an empty policy (the default) is no augmentation and draws nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


class DiffAugment:
    """``__call__(images)``: the policy's transforms, each sample drawn independently."""

    def __init__(
        self,
        policy: Sequence[str],
        generator: torch.Generator,
        translation: float = 0.125,
        cutout: float = 0.5,
    ):
        unknown = [p for p in policy if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown}; choose from {POLICIES}")
        self.policy = list(policy)
        self.generator = generator
        self.translation = translation
        self.cutout = cutout

    def __bool__(self) -> bool:
        return bool(self.policy)

    def _rand(self, *shape: int, device: torch.device) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.generator.device).to(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            images = getattr(self, f"_{name}")(images)
        return images

    def _color(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5] (images in [-1, 1])."""
        b = x.shape[0]
        brightness, saturation, contrast = self._rand(3, b, 1, 1, 1, device=x.device).unbind(0)
        x = x + (brightness - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (saturation * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (contrast + 0.5) + mean

    def _translation(self, x: torch.Tensor) -> torch.Tensor:
        """Shift by up to ``translation`` of the side, filling with zeros (grey)."""
        b, _, h, w = x.shape
        sy, sx = max(1, int(h * self.translation + 0.5)), max(1, int(w * self.translation + 0.5))
        r = self._rand(2, b, device=x.device)
        dy = (r[0] * (2 * sy + 1)).long() - sy  # in [-sy, sy]
        dx = (r[1] * (2 * sx + 1)).long() - sx
        padded = F.pad(x, (sx, sx, sy, sy))
        rows = torch.arange(h, device=x.device)[None, :] + sy - dy[:, None]  # (B, H)
        cols = torch.arange(w, device=x.device)[None, :] + sx - dx[:, None]  # (B, W)
        index = rows[:, None, :, None] * padded.shape[3] + cols[:, None, None, :]
        flat = padded.flatten(2)
        return flat.gather(2, index.expand(b, x.shape[1], h, w).flatten(2)).view_as(x)

    def _cutout(self, x: torch.Tensor) -> torch.Tensor:
        """Zero (grey) one square of ``cutout`` of the side at a random place."""
        b, _, h, w = x.shape
        ch, cw = max(1, int(h * self.cutout + 0.5)), max(1, int(w * self.cutout + 0.5))
        r = self._rand(2, b, device=x.device)
        y0 = (r[0] * (h + 1 - ch % 2)).long() - ch // 2
        x0 = (r[1] * (w + 1 - cw % 2)).long() - cw // 2
        ys = torch.arange(h, device=x.device)[None, :]
        xs = torch.arange(w, device=x.device)[None, :]
        in_y = (ys >= y0[:, None]) & (ys < (y0 + ch)[:, None])  # (B, H)
        in_x = (xs >= x0[:, None]) & (xs < (x0 + cw)[:, None])  # (B, W)
        keep = ~(in_y[:, :, None] & in_x[:, None, :])
        return x * keep[:, None].to(x.dtype)
