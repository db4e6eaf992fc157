"""Word-attention maps as extra graph outputs (``t2i-stages export --attention``).

A refinement stage whose fusion attends over the words (AttnGAN's word attention, DM-GAN's and
GR-GAN's dynamic-memory addressing) returns its weights as ``GeneratorOutput.attention[s - 1]``,
(B, T, h, w): for each token slot of ``token_ids``/``token_mask`` its weight at each position of
the stage's *input* feature map (h = the previous stage's resolution, half the stage's image).
This module finds which stages have one, by running the generator once, and describes them in
``model.json``. Exporting them is the graph wrappers' job (``graphs.generator_graph``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .graphs import ExportError, attention_name

WORDS = "token slots of token_ids/token_mask"
PADDING = (
    "what the PyTorch module gives: masked_softmax multiplies by the mask, so padded slots are "
    "exactly 0 and a fully padded caption's map is all 0 (a recipe with "
    "reference_mask_layout: true reproduces the reference code's mask layout instead)"
)


@dataclass(frozen=True)
class AttentionMap:
    """One stage's attention output: where it comes from and its spatial size."""

    stage: int
    height: int
    width: int
    image_resolution: int

    @property
    def output(self) -> str:
        return attention_name(self.stage)


def find_attention(
    generator: nn.Module,
    z: torch.Tensor,
    eps: torch.Tensor | None,
    text: Any,
    generator_type: str | None = None,
) -> list[AttentionMap]:
    """The stages whose forward returns a (B, T, h, w) word-attention map, from one run.

    A generator with none (DF-GAN, or stage-wise with affine fusion only) is an error: asking
    for attention outputs and getting an empty list would hide it.
    """
    with torch.no_grad():
        out = generator(z, eps, text)
    b, t = text.mask.shape
    resolutions = [int(r) for r in generator.resolutions]
    found = []
    for i, attn in enumerate(getattr(out, "attention", None) or []):
        if attn is None:
            continue
        stage = i + 1
        if attn.dim() != 4 or tuple(attn.shape[:2]) != (b, t):
            raise ExportError(
                f"--attention: stage {stage}'s attention map has shape {tuple(attn.shape)}; "
                f"expected (batch {b}, token slots {t}, h, w)"
            )
        found.append(
            AttentionMap(stage, int(attn.shape[2]), int(attn.shape[3]), resolutions[stage])
        )
    if not found:
        name = (
            f"'{generator_type}' ({type(generator).__name__})"
            if generator_type
            else (f"{type(generator).__name__}")
        )
        raise ExportError(
            f"--attention: generator {name} has no word attention (no stage returns an "
            "attention map); export it without --attention"
        )
    return found


def manifest_entries(maps: list[AttentionMap]) -> list[dict[str, Any]]:
    """``model.json``'s ``attention`` list."""
    return [
        {
            "output": m.output,
            "stage": m.stage,
            "resolution": m.height,
            "image_resolution": m.image_resolution,
            "shape": ["batch", "T", m.height, m.width],
            "words": WORDS,
            "padding": PADDING,
        }
        for m in maps
    ]


def describe_outputs(maps: list[AttentionMap]) -> list[dict[str, Any]]:
    """The attention outputs as ``model.json``'s ``outputs`` entries (after the images)."""
    return [
        {
            "name": m.output,
            "dtype": "float32",
            "shape": ["batch", "T", m.height, m.width],
            "range": [0.0, 1.0],
            "resolution": m.height,
            "stage": m.stage,
            "description": f"stage {m.stage}'s word attention: the weight of each token slot "
            f"at each of the {m.height}x{m.width} positions of the stage's input features "
            "(sums to 1 over the real words; padded slots 0)",
        }
        for m in maps
    ]
