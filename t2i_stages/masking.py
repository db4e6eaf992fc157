"""Masked softmax and mean that stay finite, and export to ONNX, even for a fully padded caption.

Part of the contract between conditioning levels and fusion blocks (a padded word gets zero
weight, a caption with no real word still gives finite outputs), so plugins get them from
``t2i_stages.plugin`` rather than rewriting them.
"""

from __future__ import annotations

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
    True = keep) is set; a fully padded row gives zeros instead of NaN."""
    m = mask.to(values.dtype)
    return (values * m).sum(dim=dim) / m.sum(dim=dim).clamp(min=1.0)
