"""The real-data loaders' params (the shapes dataset keeps its own in shapes/params.py).

No torch here (see ``t2i_stages.plugins``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from t2i_stages.plugin import (
    MAX_CAPTIONS,
    MAX_LAYERS,
    MAX_RESOLUTION,
    MAX_TOKENS,
    Params,
)


class RealParams(Params):
    """Fields every real-data loader shares."""

    root: str = Field(description="Folder holding the dataset in its own layout.")
    resolutions: list[Annotated[int, Field(ge=1, le=MAX_RESOLUTION)]] = Field(
        default_factory=lambda: [64, 128, 256],
        max_length=MAX_LAYERS,
        description="Default per-stage image sizes when the caller gives none.",
    )
    max_words: int = Field(
        18, le=MAX_TOKENS, ge=1, description="Word positions per caption (the references use 18)."
    )
    word_subsample: bool = Field(
        True,
        description="Keep a random ordered subset of words of a longer caption (else cut the tail).",
    )
    tokenizer: str = Field(
        "word",
        description="'word' for a word vocabulary, else a local Hugging Face tokenizer path.",
    )
    vocab_path: str | None = Field(
        None, description="A saved vocabulary / tokenizer to use instead of building one."
    )
    seed: int = Field(
        0, description="Seed of caption draws, word subsampling and crops (with epoch and index)."
    )
    min_captions: int = Field(
        1, le=MAX_CAPTIONS, ge=1, description="Images with fewer usable captions are bad data."
    )
    captions_per_image: int | None = Field(
        None, le=MAX_CAPTIONS, ge=1, description="Keep only the first N captions of an image."
    )
    crop_scale: float = Field(
        76 / 64, ge=1.0, le=2.0, description="Shorter side is resized to this x the crop size."
    )
    random_crop: bool = Field(
        True, description="Random crop and flip in the train split (centre crop otherwise)."
    )
    flip: bool = Field(True, description="Random horizontal flips in the train split.")
    augment_test: bool = Field(
        False, description="Also random-crop / flip the test split (the references do)."
    )
    check_images: str = Field(
        "header",
        pattern="^(none|header|full)$",
        description="While indexing: none, header (open each image, cheap) or full (decode each image).",
    )
    strict: bool = Field(False, description="Raise on the first bad sample instead of skipping it.")


class CocoParams(RealParams):
    """MS-COCO captions (official annotation JSON, or the AttnGAN/DM-GAN layout)."""

    layout: Literal["auto", "official", "attngan"] = Field(
        "auto", description="On-disk layout of root."
    )
    year: Literal["2014", "2017"] = Field(
        "2014", description="Official layout: which annotation year."
    )
    min_captions: int = Field(
        5,
        le=MAX_CAPTIONS,
        ge=1,
        description="Images with fewer captions are bad data (COCO has 5).",
    )
    captions_per_image: int | None = Field(
        5, le=MAX_CAPTIONS, ge=1, description="Keep the first N captions (the references use 5)."
    )


class CubParams(RealParams):
    """CUB-200-2011 birds (AttnGAN / DM-GAN layout)."""

    bbox_crop: bool = Field(
        True, description="Crop around the bird's bounding box first (as the references do)."
    )
    min_captions: int = Field(
        10,
        le=MAX_CAPTIONS,
        ge=1,
        description="Images with fewer captions are bad data (CUB has 10).",
    )
    captions_per_image: int | None = Field(
        10, le=MAX_CAPTIONS, ge=1, description="Keep the first N captions."
    )


class FolderParams(RealParams):
    """Images with sidecar .txt captions, or a JSONL manifest, per split."""

    train: str = Field(
        "train", description="Train split: a folder or a .jsonl manifest, relative to root."
    )
    test: str | None = Field(
        "test", description="Test split: a folder or a .jsonl manifest; null to use test_fraction."
    )
    test_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="With test: null, the share of train images held out as the test split.",
    )
