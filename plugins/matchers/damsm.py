"""The DAMSM matcher (AttnGAN / DM-GAN): bi-RNN text side and a CNN image side (§5.1-5.2)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from t2i_stages.plugin import MAX_CHANNELS, MAX_VOCAB, ImageFeatures, Matcher, Params, TextFeatures
from t2i_stages.plugins.text_encoders.damsm_rnn import DamsmRnnEncoder, DamsmRnnParams

from .image_cnn import InceptionImageEncoder, SmallCnnImageEncoder, SmallCnnParams
from .pretrain.params import PretrainParams


class DamsmParams(Params):
    """DAMSM: bidirectional RNN over words + image CNN with region features."""

    text_dim: int = Field(256, gt=0, le=MAX_CHANNELS, description="Shared feature size D (nef).")
    embedding_dim: int = Field(
        300, gt=0, le=MAX_CHANNELS, description="Word-embedding size of the RNN."
    )
    rnn_type: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell type.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout on word embeddings.")
    sentence: Literal["last", "mean"] = Field(
        "last",
        description="Sentence vector: the RNN's last states (reference) or the mean word feature.",
    )
    backbone: Literal["small_cnn", "inception"] = Field(
        "small_cnn",
        description="small_cnn: trained from scratch (small datasets); inception: frozen "
        "ImageNet Inception-v3 read from a local file (the references' setting).",
    )
    small_cnn: SmallCnnParams = Field(
        default_factory=SmallCnnParams, description="Size of the from-scratch CNN."
    )
    inception_weights: str | None = Field(
        None,
        description="Path of torchvision's inception_v3_google-0cc3c7bd.pth; null = the "
        "default place under $T2I_STAGES_HOME.",
    )
    vocab_size: int | None = Field(
        None,
        gt=1,
        le=MAX_VOCAB,
        description="Vocabulary size; null takes the dataset's (vocab_size in ctx).",
    )
    pretrain: PretrainParams = Field(
        default_factory=PretrainParams, description="How this matcher is pretrained."
    )


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
        if params.backbone == "inception":
            self.image = InceptionImageEncoder(params.text_dim, params.inception_weights)
        else:
            self.image = SmallCnnImageEncoder(params.small_cnn, params.text_dim)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        return self.text.encode_text(tokens, mask)

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        return self.image(images)

    def is_frozen_buffer(self, name: str) -> bool:
        return name.startswith("image.backbone.")


def build_damsm(params: DamsmParams, vocab_size: int | None = None, **ctx: Any) -> DamsmMatcher:
    size = params.vocab_size or vocab_size
    if not size:
        raise ValueError(
            "the DAMSM matcher needs a vocabulary size: set params.vocab_size or build it with "
            "vocab_size=<len(dataset.vocab)>"
        )
    return DamsmMatcher(params, int(size))
