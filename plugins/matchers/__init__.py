"""Built-in image-text matchers: DAMSM and the CLIP-based ITM, pretrained on the run's data by
their ``prepare`` step (``pretrain/``)."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import DamsmParams, ItmParams


@hookimpl
def t2i_stages_matchers() -> dict[str, ComponentSpec]:
    return {
        "damsm": ComponentSpec(
            "t2i_stages.plugins.matchers.damsm:build_damsm",
            DamsmParams,
            "DAMSM (AttnGAN/DM-GAN): bi-RNN text + small CNN or frozen Inception-v3 image side",
            prepare="t2i_stages.plugins.matchers.pretrain:prepare_matcher",
        ),
        "itm": ComponentSpec(
            "t2i_stages.plugins.matchers.itm:build_itm",
            ItmParams,
            "GR-GAN ITM on transformers.CLIPModel: frozen local CLIP + head, or tiny CLIP from scratch",
            prepare="t2i_stages.plugins.matchers.pretrain:prepare_matcher",
        ),
    }
