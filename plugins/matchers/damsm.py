"""The DAMSM matcher (AttnGAN / DM-GAN): bi-RNN text side and a CNN image side (§5.1-5.2)."""

from __future__ import annotations

from typing import Any

import torch

from t2i_stages.plugin import ImageFeatures, Matcher, TextFeatures
from t2i_stages.plugins.text_encoders.damsm_rnn import DamsmRnnEncoder, DamsmRnnParams

from .image_cnn import InceptionImageEncoder, SmallCnnImageEncoder
from .params import DamsmParams


class DamsmMatcher(Matcher):
    """DAMSM text RNN + image CNN (small from-scratch CNN or frozen Inception-v3)."""

    def __init__(self, params: DamsmParams, vocab_size: int):
        super().__init__()
        self.params = params
        self.pretrain = params.pretrain
        self.text_dim = params.text_dim
        rnn = DamsmRnnParams(
            text_dim=params.text_dim,
            embedding_dim=params.embedding_dim,
            rnn_type=params.rnn_type,
            dropout=params.dropout,
            sentence=params.sentence,
        )
        self.text = DamsmRnnEncoder(rnn, vocab_size)
        if params.backbone in ("inception", "inception_checkpoint"):
            trunk = "imagenet" if params.backbone == "inception" else "checkpoint"
            self.image = InceptionImageEncoder(
                params.text_dim, params.inception_weights, params.resize_align_corners, trunk
            )
        else:
            self.image = SmallCnnImageEncoder(
                params.small_cnn, params.text_dim, params.resize_align_corners
            )

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self.text.encode_text(tokens, mask)

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        return self.image(images)

    def is_frozen_buffer(self, name: str) -> bool:
        return self.params.backbone == "inception" and name.startswith("image.backbone.")

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps; with ``inception_checkpoint`` the frozen trunk too, since
        no file outside the checkpoint holds it."""
        out = super().trainable_state_dict()
        if self.params.backbone == "inception_checkpoint":
            trunk = self.image.backbone.state_dict()
            out.update({f"image.backbone.{k}": v.detach() for k, v in trunk.items()})
        return out


def build_damsm(params: DamsmParams, vocab_size: int | None = None, **ctx: Any) -> DamsmMatcher:
    size = params.vocab_size or vocab_size
    if not size:
        raise ValueError(
            "the DAMSM matcher needs a vocabulary size: set params.vocab_size or build it with "
            "vocab_size=<len(dataset.vocab)>"
        )
    return DamsmMatcher(params, int(size))
