"""The conditioning levels' params. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from pydantic import Field

from t2i_stages.plugin import (
    MAX_CHANNELS,
    Params,
)


class CAParams(Params):
    """Conditioning augmentation of the sentence vector (AttnGAN, DM-GAN and GR-GAN stage 1).

    Parameters: ``nef * 4 * c_dim + 4 * c_dim`` (Linear with bias), e.g. 102,800 at nef 256.
    """

    c_dim: int = Field(
        100, gt=0, le=MAX_CHANNELS, description="Size of the condition c (GAN.CONDITION_DIM, 100)."
    )


class SequenceParams(Params):
    """A word-position sequence with its mask (AttnGAN/DM-GAN words; GR-GAN stages 2 and 3).

    ``shift_mask`` reproduces GR-GAN's off-by-one mask (reference §4.1, §13.6): its code builds
    the mask from the un-sliced 77 CLIP tokens and truncates it, while the words come from
    positions 1..T. Default false, which is the AttnGAN/DM-GAN reference and a correct mask; the
    GR-GAN recipe sets it true when its text encoder returns the correctly aligned mask.
    """

    shift_mask: bool = Field(
        False,
        description="Shift the word mask right by one position (GR-GAN's reference off-by-one).",
    )


class MeanWordsParams(Params):
    """The mean of the word features (GR-GAN's D3 condition).

    The reference averages over all T positions, padding included (``masked: false``);
    ``masked: true`` averages over the real words only (a fully padded caption gives zeros).
    """

    masked: bool = Field(False, description="Average over real words only (reference: false).")


class WordPoolParams(Params):
    """A discriminator's own learned attention over the word features (``word_pool.py``).

    Trainable, so it belongs where its owner's optimizer reaches it: a conditional D head (an
    ablation option of issue 21, not a reference model's design).
    """

    heads: int = Field(4, gt=0, le=64, description="Learned queries, each one read of the words.")
    dim: int | None = Field(
        None, gt=0, le=MAX_CHANNELS, description="Size of the condition vector (default text_dim)."
    )


class TokenEmbeddingParams(Params):
    """A discriminator's own word embedding from the token ids (``token_embedding.py``).

    Trainable, so it belongs in a conditional D head (an ablation option of issue 21).
    """

    dim: int | None = Field(
        None, gt=0, le=MAX_CHANNELS, description="Size of the embedding (default text_dim)."
    )
    buckets: int = Field(
        4096, gt=0, le=1_000_000, description="Rows of the embedding; token ids are hashed in."
    )


class TokenWordsParams(Params):
    """A generator stage's own word embedding added to the frozen words (``token_embedding.py``).

    Trainable by the generator's optimizer: an ablation option of issue 21 (no reference model
    has it). ``zero_init`` starts the added term at zero, so the stage begins as with ``words``.
    """

    buckets: int = Field(
        4096, gt=0, le=1_000_000, description="Rows of the embedding; token ids are hashed in."
    )
    zero_init: bool = Field(
        True, description="Start the added term at zero (the stage starts as with plain words)."
    )
    shift_mask: bool = Field(
        False, description="Shift the word mask right by one position, as ``words`` can."
    )
