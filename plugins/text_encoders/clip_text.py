"""The CLIP text tower as a text encoder (through ``transformers``).

With ``project: true`` both the word features and the sentence go through CLIP's
``text_projection`` (D = projection_dim), so words and sentence live in one space; otherwise
D is the text transformer width and the sentence is the unprojected EOS feature.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2i_stages.plugin import TextFeatures

from .clip_common import build_clip, make_text_side
from .params import ClipTextParams


class ClipTextEncoder(nn.Module):
    """encode_text(tokens, mask) -> TextFeatures from a CLIP text transformer."""

    def __init__(self, params: ClipTextParams, vocab_size: int | None = None, vocab: Any = None):
        super().__init__()
        self.params = params
        model, tokenizer, folder = build_clip(params.path, params.scratch, vocab_size)
        self.folder = folder
        self.text = make_text_side(
            model, tokenizer, params.ids, folder is not None, vocab, params.max_length
        )
        self.projection = model.text_projection if params.project else None
        cfg = model.config
        self.text_dim = int(cfg.projection_dim if params.project else cfg.text_config.hidden_size)
        trainable = params.trainable if params.trainable is not None else folder is None
        if not trainable:
            self.requires_grad_(False)

    def _finish(self, hidden: torch.Tensor, mask: torch.Tensor, eos: torch.Tensor) -> TextFeatures:
        if self.projection is not None:
            hidden, eos = self.projection(hidden), self.projection(eos)
        words = (hidden * mask[:, :, None].to(hidden.dtype)).transpose(1, 2)
        return TextFeatures(words, eos, mask, mask.sum(1))

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self._finish(*self.text(tokens, mask))

    def encode_captions(self, captions: list[str]) -> TextFeatures:
        """Encode raw caption strings with the folder's tokenizer (pretrained models only)."""
        return self._finish(*self.text.encode_captions(captions))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self.encode_text(tokens, mask)


def build_clip_text(
    params: ClipTextParams, vocab_size: int | None = None, vocab: Any = None, **ctx: Any
) -> ClipTextEncoder:
    return ClipTextEncoder(params, vocab_size=vocab_size, vocab=vocab)
