"""The text encoders' params (and the CLIP size and ids-mode types the ITM matcher shares).

No torch here (see ``t2i_stages.plugins``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from t2i_stages.plugin import (
    MAX_CHANNELS,
    MAX_LAYERS,
    MAX_RESOLUTION,
    MAX_TOKENS,
    MAX_VOCAB,
    Params,
)

IdsMode = Literal["auto", "word_level", "model", "retokenize"]


class TinyClipConfig(Params):
    """Size of a CLIP trained from scratch (small enough for minutes on a 2-core CPU)."""

    text_width: int = Field(128, gt=0, le=MAX_CHANNELS, description="Text transformer width.")
    text_layers: int = Field(2, gt=0, le=MAX_LAYERS, description="Text transformer layers.")
    text_heads: int = Field(4, gt=0, le=MAX_LAYERS, description="Text attention heads.")
    vision_width: int = Field(128, gt=0, le=MAX_CHANNELS, description="Vision transformer width.")
    vision_layers: int = Field(2, gt=0, le=MAX_LAYERS, description="Vision transformer layers.")
    vision_heads: int = Field(4, gt=0, le=MAX_LAYERS, description="Vision attention heads.")
    mlp_ratio: int = Field(
        2, gt=0, le=MAX_LAYERS, description="Feed-forward width as a multiple of the width."
    )
    image_size: int = Field(
        32, gt=0, le=MAX_RESOLUTION, description="Images are resized to this size."
    )
    patch_size: int = Field(
        4, gt=0, le=MAX_RESOLUTION, description="ViT patch size; regions = (image/patch)^2."
    )
    projection_dim: int = Field(
        128, gt=0, le=MAX_CHANNELS, description="CLIP joint embedding size."
    )
    patch_stem: Literal["linear", "conv"] = Field(
        "linear",
        description="linear: CLIP's patch embedding (one strided conv); conv: a convolutional "
        "stem (3x3 conv, 2x2 max-pool, BatchNorm, ReLU per halving, then 1x1 to the width) "
        "that learns shapes far faster from scratch (patch_size must be a power of two).",
    )
    stem_width: int = Field(
        32, gt=0, le=MAX_CHANNELS, description="Channels of the conv stem's first step."
    )
    max_words: int = Field(
        64,
        gt=0,
        le=MAX_TOKENS,
        description="Longest caption in words (text positions = max_words + 2).",
    )


class DamsmRnnParams(Params):
    """DAMSM text encoder: word embedding -> dropout -> 1-layer bidirectional LSTM/GRU (§5.1)."""

    text_dim: int = Field(
        256,
        gt=0,
        le=MAX_CHANNELS,
        description="Output size D (nef); each direction has D/2 hidden units.",
    )
    embedding_dim: int = Field(300, gt=0, le=MAX_CHANNELS, description="Word-embedding size.")
    rnn_type: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell type.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout on word embeddings (training).")
    sentence: Literal["last", "mean"] = Field(
        "last",
        description="Sentence vector: last hidden state of each direction (the reference) or the "
        "mean of the word features over real words (learns faster from scratch).",
    )
    vocab_size: int | None = Field(
        None,
        gt=1,
        le=MAX_VOCAB,
        description="Vocabulary size; null takes the dataset's (passed as vocab_size by the caller).",
    )
    trainable: bool = Field(
        True,
        description="Leave the weights trainable; AttnGAN/DM-GAN freeze it after DAMSM pretraining.",
    )


class ClipTextParams(Params):
    """CLIP text encoder: a local pretrained CLIP folder, or a tiny CLIP trained from scratch."""

    path: str | None = Field(
        None,
        description="Local Hugging Face CLIP folder (absolute, ./relative, or relative to "
        "$T2I_STAGES_HOME); null builds a tiny CLIP from scratch with 'scratch'.",
    )
    scratch: TinyClipConfig = Field(
        default_factory=TinyClipConfig, description="Size of the from-scratch CLIP (path null)."
    )
    ids: IdsMode = Field(
        "auto",
        description="How dataset tokens reach CLIP: word_level (scratch), model (dataset used "
        "this model's tokenizer), retokenize (decode with the dataset vocab, re-tokenize); auto "
        "picks one from path and the vocabulary.",
    )
    project: bool = Field(
        True, description="Apply CLIP's text_projection to words and sentence (D = projection_dim)."
    )
    max_length: int = Field(77, gt=2, le=MAX_TOKENS, description="Token limit when re-tokenizing.")
    trainable: bool | None = Field(
        None, description="Train the tower; null = frozen when pretrained, trainable from scratch."
    )


class HfTextParams(Params):
    """Any Hugging Face encoder (BERT, RoBERTa, DistilBERT, ...) from a local folder."""

    path: str = Field(
        description="Model folder saved with save_pretrained: absolute, ./relative, relative "
        "to $T2I_STAGES_HOME, or inside 'package' when that is set."
    )
    package: str | None = Field(
        None, description="Installed Python package that ships the folder ('path' is inside it)."
    )
    pooling: Literal["mean", "cls", "pooler", "last"] = Field(
        "mean",
        description="Sentence vector: masked mean of the word features, the first token, the "
        "model's pooler output, or the last real token (for causal models).",
    )
    ids: Literal["auto", "model", "retokenize"] = Field(
        "auto",
        description="model: dataset tokens are this model's ids; retokenize: decode with the "
        "dataset vocab and tokenize again; auto: retokenize for a word-level vocabulary.",
    )
    text_dim: int | None = Field(
        None,
        gt=0,
        le=MAX_CHANNELS,
        description="Add a trainable linear projection to this size (null: none).",
    )
    max_length: int = Field(64, gt=2, le=MAX_TOKENS, description="Token limit when re-tokenizing.")
    trainable: bool = Field(False, description="Fine-tune the pretrained encoder's weights.")
