"""Masked softmax and mean that stay finite, and export to ONNX, even for a fully padded caption.

Part of the contract between conditioning levels and fusion blocks (a padded word gets zero
weight, a caption with no real word still gives finite outputs), so plugins get them from
``t2i_stages.plugin`` rather than rewriting them.
"""

from __future__ import annotations

import warnings

import torch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` over ``dim`` where ``mask`` (bool, True = keep) broadcasts to scores.

    Masked scores are filled with ``torch.finfo(dtype).min`` (never ``-inf``: a row with no real
    word would give NaN), and the weights are multiplied by the mask afterwards, so padded
    positions get exactly zero weight and a fully padded row gives all zeros (reads nothing).
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = mask.to(torch.bool)
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * mask.to(scores.dtype)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` counting only positions where ``mask`` (broadcastable,
    True = keep) is set; a fully padded row gives zeros instead of NaN.

    In an ONNX export the masked sum is written as a batched MatMul (see ``_masked_sum``)."""
    m = mask.to(values.dtype)
    return _masked_sum(values, m, dim) / m.sum(dim=dim).clamp(min=1.0)


def _masked_sum(values: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """``(values * m).sum(dim)``; exported as ``MatMul`` where the shapes allow it.

    Why: ONNX Runtime's CPU ``ReduceSum`` over the middle axis of a (1, L, D) tensor collapses the
    batch of one into a 2-D reduction with another summation order than for a batch of several
    (a sentence moves by ~2e-7), so a caption's features would depend on what it was batched
    with. A batched MatMul sums each row's L terms the same way at any batch size, which lets
    ``t2i-stages serve`` run a lone request as one row (docs/deployment.md, "Micro-batching").
    Eager training keeps the plain sum (bit for bit what it always was).
    """
    d = dim % values.dim()
    if values.dim() == 3 and m.dim() == 3 and d in (1, 2) and torch.onnx.is_in_onnx_export():
        with warnings.catch_warnings():  # the tracer records the static size 1 as a constant
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            broadcast = int(m.shape[3 - d]) == 1  # the feature axis the mask broadcasts over
        if broadcast:
            if d == 1:  # values (B, L, D), mask (B, L, 1): (B, 1, L) @ (B, L, D)
                return torch.matmul(m.transpose(1, 2), values).squeeze(1)
            return torch.matmul(values, m.transpose(1, 2)).squeeze(2)  # (B, D, L) @ (B, L, 1)
    return (values * m).sum(dim=d)
