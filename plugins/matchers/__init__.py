"""Built-in image-text matchers: DAMSM and the CLIP-based ITM, pretrained on the run's data by
their ``prepare`` step (``pretrain/``)."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import damsm, itm
from .pretrain import prepare_matcher


@hookimpl
def t2i_stages_matchers() -> dict[str, ComponentSpec]:
    return {
        "damsm": ComponentSpec(
            damsm.build_damsm,
            damsm.DamsmParams,
            "DAMSM (AttnGAN/DM-GAN): bi-RNN text + small CNN or frozen Inception-v3 image side",
            prepare=prepare_matcher,
        ),
        "itm": ComponentSpec(
            itm.build_itm,
            itm.ItmParams,
            "GR-GAN ITM on transformers.CLIPModel: frozen local CLIP + head, or tiny CLIP from scratch",
            prepare=prepare_matcher,
        ),
    }
