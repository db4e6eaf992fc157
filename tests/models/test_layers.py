"""Shared layers: the fused upsample + conv of UpBlock computes what the plain pair computes."""

from __future__ import annotations

import torch
from torch import nn

from t2i_stages.plugins.common.layers import UpBlock, upsample_conv_weight


def _plain(block: UpBlock, x: torch.Tensor) -> torch.Tensor:
    return nn.Sequential.forward(block, x)  # upsample, conv3x3, BatchNorm, GLU one by one


def test_upblock_equals_upsample_then_conv_forward_and_backward():
    torch.manual_seed(0)
    block = UpBlock(6, 4).double()
    x = torch.randn(3, 6, 5, 7, dtype=torch.double, requires_grad=True)  # odd, non-square
    fused, plain = block(x), _plain(block, x)
    assert fused.shape == (3, 4, 10, 14)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)
    g = torch.randn_like(fused)
    got = torch.autograd.grad(fused, [x, block[1].weight], g)
    want = torch.autograd.grad(plain, [x, block[1].weight], g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_upblock_keeps_its_parameters_and_state_dict_keys():
    block = UpBlock(8, 4)
    assert list(block.state_dict()) == [
        "1.weight",
        "2.weight",
        "2.bias",
        "2.running_mean",
        "2.running_var",
        "2.num_batches_tracked",
    ]
    assert upsample_conv_weight(block[1].weight).shape == (8, 8, 4, 4)


def test_upblock_in_eval_mode_and_fp32_matches_closely():
    torch.manual_seed(1)
    block = UpBlock(16, 8).eval()
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), _plain(block, x), rtol=1e-5, atol=1e-5)
