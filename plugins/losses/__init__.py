"""Built-in losses: adversarial, matching, KL and diversity."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import (
    BCEMismatchParams,
    HingeMAGPParams,
    KLParams,
    ModeSeekingParams,
    SentenceMatchingParams,
    WordRegionMatchingParams,
)


@hookimpl
def t2i_stages_losses() -> dict[str, ComponentSpec]:
    return {
        "bce_mismatch": ComponentSpec(
            "t2i_stages.plugins.losses.adversarial:build_bce_mismatch",
            BCEMismatchParams,
            "AttnGAN/DM-GAN/GR-GAN adversarial loss: BCE, (un)conditional heads, mismatched pairs",
            role="adversarial",
        ),
        "hinge_magp": ComponentSpec(
            "t2i_stages.plugins.losses.adversarial:build_hinge_magp",
            HingeMAGPParams,
            "DF-GAN adversarial loss: hinge with mismatched pairs and the MA-GP penalty",
            role="adversarial",
        ),
        "ca_kl": ComponentSpec(
            "t2i_stages.plugins.losses.kl:build_kl",
            KLParams,
            "KL of the conditioning augmentation (mean over batch and dims)",
            role="kl",
        ),
        "mode_seeking": ComponentSpec(
            "t2i_stages.plugins.losses.diversity:build_mode_seeking",
            ModeSeekingParams,
            "MSGAN mode-seeking term: 1 / (image distance / noise distance) of two draws per caption",
            role="diversity",
        ),
        "sentence_matching": ComponentSpec(
            "t2i_stages.plugins.losses.matching:build_sentence_matching",
            SentenceMatchingParams,
            "DAMSM/ITM sentence-image loss S0+S1 (γ3, class masking); call(image_feats, text, class_ids)",
            role="matching",
        ),
        "word_region_matching": ComponentSpec(
            "t2i_stages.plugins.losses.matching:build_word_region_matching",
            WordRegionMatchingParams,
            "DAMSM/ITM word-region loss W0+W1 (γ1, γ2, γ3, class masking); call(image_feats, text, class_ids)",
            role="matching",
        ),
    }
