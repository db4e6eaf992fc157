"""Built-in conditioning levels: CA, sentence, tiled sentence, words, mean of words, none.

Every level is built with ``text_dim`` in its context and maps ``(text, eps) -> Condition``
(``Condition`` is in ``t2i_stages.plugin``).
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl

from . import ca, levels


@hookimpl
def t2i_stages_conditioning() -> dict[str, ComponentSpec]:
    return {
        "ca": ComponentSpec(
            ca.build_ca,
            ca.CAParams,
            "conditioning augmentation of the sentence: vector c = mu + sigma*eps, with mu/logvar",
        ),
        "sentence": ComponentSpec(levels.build_sentence, NoParams, "the raw sentence vector"),
        "sentence_tiled": ComponentSpec(
            levels.build_sentence_tiled,
            levels.SequenceParams,
            "the sentence repeated over the word positions, with the mask (GR-GAN stage 2)",
        ),
        "words": ComponentSpec(
            levels.build_words, levels.SequenceParams, "the word matrix (B, D, T) and its mask"
        ),
        "mean_words": ComponentSpec(
            levels.build_mean_words,
            levels.MeanWordsParams,
            "the mean of the word features (GR-GAN's D3 condition)",
        ),
        "none": ComponentSpec(levels.build_none, NoParams, "no text"),
    }
