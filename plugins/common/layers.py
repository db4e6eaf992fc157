"""Building blocks of the StackGAN++ lineage (AttnGAN, DM-GAN, GR-GAN), per reference §1."""

from __future__ import annotations

import torch
from torch import nn


class GLU(nn.Module):
    """Gated linear unit over channels: ``a * sigmoid(b)`` for the two channel halves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        return x[:, :half] * torch.sigmoid(x[:, half:])


def conv3x3(in_ch: int, out_ch: int, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution, stride 1, padding 1 (no bias in the reference generators)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution (the reference projects words with it, without bias)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=1, padding=0, bias=bias)


class DownBlock(nn.Sequential):
    """conv3x3 -> 2x2 max-pool -> BatchNorm -> ReLU: halves the resolution. The from-scratch
    encoders (DAMSM's small CNN, the ITM's conv stem) use it because it learns shapes fast."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            conv3x3(in_ch, out_ch), nn.MaxPool2d(2), nn.BatchNorm2d(out_ch), nn.ReLU(True)
        )


class UpBlock(nn.Sequential):
    """Nearest x2 upsample -> conv3x3(in -> 2*out) -> BatchNorm -> GLU: doubles the resolution."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv3x3(in_ch, out_ch * 2),
            nn.BatchNorm2d(out_ch * 2),
            GLU(),
        )


class ResBlock(nn.Module):
    """conv3x3(C -> 2C) -> BN -> GLU -> conv3x3(C -> C) -> BN, plus the input (no activation after)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channels, channels * 2),
            nn.BatchNorm2d(channels * 2),
            GLU(),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)
