"""The matchers' params (their pretraining block is pretrain/params.py).

No torch here (see ``t2i_stages.plugins``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_LAYERS,
    MAX_RESOLUTION,
    MAX_TOKENS,
    MAX_VOCAB,
    Params,
)
from t2i_stages.plugins.text_encoders.params import IdsMode, TinyClipConfig

from .pretrain.params import PretrainParams


class SmallCnnParams(Params):
    """A small from-scratch image CNN for small datasets (regions = (image_size / 8)^2)."""

    image_size: int = Field(
        64,
        ge=16,
        le=MAX_RESOLUTION,
        description="Images are resized to this size (multiple of 16).",
    )
    width: int = Field(
        32, gt=0, le=MAX_CHANNELS, description="Channels of the first layer; doubled at each step."
    )
    arch: Literal["strided", "pooled"] = Field(
        "strided",
        description="strided: 4x4 stride-2 convs with LeakyReLU (the first design); pooled: "
        "3x3 conv, 2x2 max-pool, BatchNorm, ReLU per step, which learns shapes several times "
        "faster from scratch (docs/matchers.md, benchmark).",
    )
    code_pool: Literal["flatten", "avgmax"] = Field(
        "flatten",
        description="Global code from the 1/16 grid: flatten (keeps the 4x4 layout) or the "
        "concatenated spatial mean and max (position-invariant, learns faster).",
    )
    region_grad: bool = Field(
        True,
        description="False: the region projection reads the trunk through a stop-gradient, so "
        "the word-region loss trains only that projection and cannot slow the sentence "
        "objective (the trunk is shaped by the sentence loss).",
    )


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
    backbone: Literal["small_cnn", "inception", "inception_checkpoint"] = Field(
        "small_cnn",
        description="small_cnn: trained from scratch (small datasets); inception: frozen "
        "ImageNet Inception-v3 read from a local file (the references' setting); "
        "inception_checkpoint: the same frozen Inception-v3 trunk (without its ImageNet fc), "
        "whose weights come with the matcher's own (a released image_encoder*.pth holds the "
        "whole trunk; `t2i-stages import` sets it): no ImageNet file is read, and the trunk is "
        "saved with the matcher, so it is loaded from a checkpoint (train.init_from) or from "
        "pretrain.weights and never pretrained.",
    )
    small_cnn: SmallCnnParams = Field(
        default_factory=SmallCnnParams, description="Size of the from-scratch CNN."
    )
    inception_weights: str | None = Field(
        None,
        description="Path of torchvision's inception_v3_google-0cc3c7bd.pth; null = the "
        "default place under $T2I_STAGES_HOME.",
    )
    resize_align_corners: bool = Field(
        False,
        description="Resize images for the image side with align_corners=True, as DM-GAN's "
        "CNN_ENCODER does (nn.Upsample(size=(299, 299), mode='bilinear', align_corners=True), "
        "code/model.py) and AttnGAN's under torch <= 0.3.1 (its line passes none, which is "
        "false from torch 0.4.0 on); it changes the generator's matching-loss gradients. "
        "false (torch's default, and AttnGAN's code as it runs today) keeps earlier runs as "
        "they were and is what the AttnGAN/DAMSM import sets; the DM-GAN paper recipes set it "
        "true.",
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

    @model_validator(mode="after")
    def _trunk_from_checkpoint_is_not_pretrained(self) -> DamsmParams:
        p = self.pretrain
        if self.backbone == "inception_checkpoint" and p.enabled and not p.weights:
            raise ValueError(
                "backbone inception_checkpoint takes its trunk from a checkpoint, so it cannot "
                "be pretrained from scratch: set pretrain.enabled false and give the weights "
                "with train.init_from (a run `t2i-stages import` wrote), or set pretrain.weights"
            )
        return self


class ItmParams(Params):
    """CLIP-based ITM: frozen pretrained CLIP + trainable head, or a tiny CLIP from scratch."""

    path: str | None = Field(
        None,
        description="Local Hugging Face CLIP folder (absolute, ./relative, or relative to "
        "$T2I_STAGES_HOME); null = a tiny CLIP trained from scratch ('scratch').",
    )
    scratch: TinyClipConfig = Field(
        default_factory=TinyClipConfig, description="Size of the from-scratch CLIP (path null)."
    )
    text_dim: int | None = Field(
        None,
        gt=0,
        le=MAX_CHANNELS,
        description="Output feature size D of the head; null = CLIP projection_dim.",
    )
    region_layer: int = Field(
        -1,
        ge=-MAX_LAYERS,
        le=MAX_LAYERS,
        description="Vision hidden-state index whose patch tokens are the regions.",
    )
    pixel_norm: Literal["clip", "none"] = Field(
        "clip",
        description="Map [-1,1] images to CLIP's mean/std ('clip'), or feed [-1,1] unchanged "
        "('none', what GR-GAN's code does).",
    )
    ids: IdsMode = Field(
        "auto",
        description="How dataset tokens reach CLIP (word_level, model, retokenize; auto picks).",
    )
    max_length: int = Field(77, gt=2, le=MAX_TOKENS, description="Token limit when re-tokenizing.")
    region_grad: bool = Field(
        True,
        description="False: the region projection reads the patch tokens through a "
        "stop-gradient, so the word-region loss trains only the head (see DAMSM's small CNN).",
    )
    image_pool: Literal["cls", "mean", "avgmax"] = Field(
        "cls",
        description="Image code from CLIP's pooled CLS token (CLIP), the mean patch token, or "
        "the mean plus the channel-wise max of the patch tokens (both through the same "
        "post-LayerNorm; they learn faster from scratch, avgmax fastest).",
    )
    text_pool: Literal["eos", "mean"] = Field(
        "eos",
        description="Sentence from the EOS token (CLIP) or the mean feature of the real words.",
    )
    image_tower: Literal["clip", "rn101"] = Field(
        "clip",
        description="clip: the CLIP folder's (ViT) image tower; rn101: OpenAI's ResNet tower read "
        "from 'rn101_weights' (GR-GAN's setting: layer3 regions, attention-pool code), frozen.",
    )
    rn101_weights: str | None = Field(
        None,
        description="OpenAI's RN101.pt (TorchScript archive, read without running it) or a "
        ".safetensors of its visual.* tensors (what `t2i-stages import itm` writes); null = "
        "the default place under $T2I_STAGES_HOME (clip/RN101.pt).",
    )
    word_layout: Literal["real_words", "grgan"] = Field(
        "real_words",
        description="real_words: the word features of the caption's real tokens (others zeroed "
        "and masked); grgan: GR-GAN's, the features of CLIP positions 1..grgan_words as its "
        "code reads them (end token and padding id 0 included, no padding mask in the tower), "
        "masked True at non-padding tokens; pair it with the stages' shift_mask. Needs a "
        "pretrained CLIP folder with a tokenizer.",
    )
    grgan_words: int = Field(
        12,
        gt=0,
        le=MAX_TOKENS,
        description="Word slots of word_layout grgan (GR-GAN's TEXT.WORDS_NUM: 12 for COCO).",
    )
    freeze_clip: bool | None = Field(
        None,
        description="Freeze the CLIP towers; null = frozen when pretrained, trained from scratch.",
    )
    pretrain: PretrainParams = Field(
        default_factory=lambda: PretrainParams(lr=1e-3),
        description="How this matcher is pretrained.",
    )

    @model_validator(mode="after")
    def _grgan_layout_needs_a_tokenizer(self) -> ItmParams:
        if self.word_layout == "grgan" and (self.path is None or self.ids == "word_level"):
            raise ValueError(
                "word_layout grgan reads CLIP's own token positions: it needs a pretrained CLIP "
                "folder ('path') and ids other than word_level"
            )
        return self
