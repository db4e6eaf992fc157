"""Building blocks of the StackGAN++ lineage (AttnGAN, DM-GAN, GR-GAN), per reference §1."""

from __future__ import annotations

import torch
from torch import nn


def is_channels_last(t: torch.Tensor) -> bool:
    """A 4-D tensor laid out channels-last (and not also plain contiguous, as 1x1 maps are)."""
    return (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )


def follow_memory_format(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last when ``like`` is (``train.channels_last``), else ``x`` itself.

    For tensors built outside a convolution (a reshape of a Linear's or a bmm's output, a tiled
    vector) that then meet channels-last ones: a mixed ``torch.cat`` or a convolution would fall
    back to the plain layout for everything after it. ``like`` must have a spatial extent: a 1x1
    kernel's weight is contiguous in both layouts and never counts as channels-last.
    """
    if x.dim() == 4 and is_channels_last(like) and not is_channels_last(x):
        return x.contiguous(memory_format=torch.channels_last)
    return x


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


# Which of a 4-tap transposed-conv kernel's taps each 3x3 tap lands on, per 1-D axis: a nearest
# x2 upsample followed by a 3x3 conv (padding 1) gives output 2i from w0*x[i-1] + (w1+w2)*x[i]
# and output 2i+1 from (w0+w1)*x[i] + w2*x[i+1], i.e. a stride-2 transposed conv with the kernel
# [w2, w1+w2, w0+w1, w0] and padding 1.
_UPSAMPLE_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def upsample_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) conv weight -> the (Cin, Cout, 4, 4) stride-2 transposed-conv weight
    that computes ``conv(upsample_nearest_x2(x))`` from ``x`` directly (2.25x fewer FLOPs)."""
    taps = _UPSAMPLE_TAPS.to(weight.device, weight.dtype)
    return torch.einsum("ay,oiyx,bx->ioab", taps, weight, taps)


class UpBlock(nn.Sequential):
    """Nearest x2 upsample -> conv3x3(in -> 2*out) -> BatchNorm -> GLU: doubles the resolution.

    The upsample and the conv run as one stride-2 transposed convolution at the input's
    resolution, with its kernel derived from the 3x3 weight on the fly: the same function (to
    float rounding), the same parameters and state dict, 2.25x fewer FLOPs in the generators'
    costliest layer (the ONNX export makes the same rewrite, export/optimize.py).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv3x3(in_ch, out_ch * 2),
            nn.BatchNorm2d(out_ch * 2),
            GLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return super().forward(x)  # the plain graph: exporters rewrite it themselves
        _, conv, norm, glu = self
        weight = follow_memory_format(upsample_conv_weight(conv.weight), conv.weight)
        y = nn.functional.conv_transpose2d(
            follow_memory_format(x, conv.weight), weight, stride=2, padding=1
        )
        return glu(norm(y))


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
