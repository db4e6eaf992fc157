"""Built-in conditioning levels: CA, sentence, tiled sentence, words, mean of words, none.

Every level is built with ``text_dim`` in its context and maps ``(text, eps) -> Condition``
(``Condition`` is in ``t2i_stages.plugin``).
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl

from .params import CAParams, MeanWordsParams, SequenceParams


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
        "none": ComponentSpec(
            "t2i_stages.plugins.conditioning.levels:build_none", NoParams, "no text"
        ),
    }
