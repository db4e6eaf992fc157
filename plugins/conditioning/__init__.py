"""Built-in conditioning levels: CA, sentence, tiled sentence, words, mean of words, learned
word pooling, learned word embeddings (a D's bag of words, a G stage's own word vectors), none.

Every level is built with ``text_dim`` in its context and maps ``(text, eps) -> Condition``
(``Condition`` is in ``t2i_stages.plugin``).
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl

from .params import (
    CAParams,
    MeanWordsParams,
    SequenceParams,
    TokenEmbeddingParams,
    TokenWordsParams,
    WordPoolParams,
)


@hookimpl
def t2i_stages_conditioning() -> dict[str, ComponentSpec]:
    return {
        "ca": ComponentSpec(
            "t2i_stages.plugins.conditioning.ca:build_ca",
            CAParams,
            "conditioning augmentation of the sentence: vector c = mu + sigma*eps, with mu/logvar",
        ),
        "sentence": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_sentence",
            NoParams,
            "the raw sentence vector",
        ),
        "sentence_tiled": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_sentence_tiled",
            SequenceParams,
            "the sentence repeated over the word positions, with the mask (GR-GAN stage 2)",
        ),
        "words": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_words",
            SequenceParams,
            "the word matrix (B, D, T) and its mask",
        ),
        "mean_words": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_mean_words",
            MeanWordsParams,
            "the mean of the word features (GR-GAN's D3 condition)",
        ),
        "word_pool": ComponentSpec(
            "t2i_stages.plugins.conditioning.word_pool:build_word_pool",
            WordPoolParams,
            "learned attention pooling of the real words (a D's own trainable reading of them)",
        ),
        "token_embedding": ComponentSpec(
            "t2i_stages.plugins.conditioning.token_embedding:build_token_embedding",
            TokenEmbeddingParams,
            "a bag of learned word vectors from the token ids (a D's own embedding)",
        ),
        "token_words": ComponentSpec(
            "t2i_stages.plugins.conditioning.token_embedding:build_token_words",
            TokenWordsParams,
            "the word matrix plus a learned vector per word from the token ids (a G stage's own)",
        ),
        "none": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_none", NoParams, "no text"
        ),
    }
