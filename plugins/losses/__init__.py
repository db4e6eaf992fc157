"""Built-in losses: adversarial, matching and KL."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import adversarial, kl, matching


@hookimpl
def t2i_stages_losses() -> dict[str, ComponentSpec]:
    return {
        "bce_mismatch": ComponentSpec(
            adversarial.build_bce_mismatch,
            adversarial.BCEMismatchParams,
            "AttnGAN/DM-GAN/GR-GAN adversarial loss: BCE, (un)conditional heads, mismatched pairs",
        ),
        "hinge_magp": ComponentSpec(
            adversarial.build_hinge_magp,
            adversarial.HingeMAGPParams,
            "DF-GAN adversarial loss: hinge with mismatched pairs and the MA-GP penalty",
        ),
        "ca_kl": ComponentSpec(
            kl.build_kl,
            kl.KLParams,
            "KL of the conditioning augmentation (mean over batch and dims)",
        ),
        "sentence_matching": ComponentSpec(
            matching.build_sentence_matching,
            matching.SentenceMatchingParams,
            "DAMSM/ITM sentence-image loss S0+S1 (γ3, class masking); call(image_feats, text, class_ids)",
        ),
        "word_region_matching": ComponentSpec(
            matching.build_word_region_matching,
            matching.WordRegionMatchingParams,
            "DAMSM/ITM word-region loss W0+W1 (γ1, γ2, γ3, class masking); call(image_feats, text, class_ids)",
        ),
    }
