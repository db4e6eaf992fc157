"""What an AttnGAN-lineage import writes over the built-in paper recipe it extends.

An imported run's recipe is ``extends: builtin:<cub|coco>/<attngan|dmgan>.yaml`` plus the sizes
read from the release's tensors. The built-in is chosen by the release's config: COCO's
vocabulary has 27,297 words (its AttnGAN gf 48 with R_NUM 3, its DM-GAN R_NUM 3), CUB's 5,450
words (AttnGAN gf 32, both R_NUM 2).
Lists (the stages, the discriminators, the losses) replace the built-in's as a whole, so they are
restated here with the built-in's values where the release does not tell (df without a netD,
the DAMSM loss weight LAMBDA).
"""

from __future__ import annotations

from typing import Any

COCO_MIN_WORDS = 10000
BUILTIN_DF = {"cub": 64, "coco": 96}  # GAN.DF_DIM of bird_attn2.yml / coco_attn2.yml
DAMSM_LAMBDA = {"cub": 5.0, "coco": 50.0}  # TRAIN.SMOOTH.LAMBDA of the same files

RESIZE_NOTE = (
    "DAMSM resize: align_corners false (AttnGAN's nn.Upsample passes none, false from torch "
    "0.4.0; torch <= 0.3.1 resized as true: set matcher.params.resize_align_corners=true for it)"
)
VOCAB_NOTE = (
    "training on the paper's data: --set data.dataset.params.vocab_path=RUN/vocab.json keeps the "
    "release's word indices (a vocabulary built from the captions orders words differently)"
)


def layout(vocab_size: int, coco_generator: bool = False) -> str:
    """``coco`` or ``cub``: the built-in recipe folder the release belongs to."""
    return "coco" if coco_generator or vocab_size > COCO_MIN_WORDS else "cub"


def discriminator_slots(
    resolutions: list[int], df: int, nef: int, spectral: bool = False
) -> list[dict[str, Any]]:
    """D_NET64/128/256, one per stage, both heads, the raw sentence: AttnGAN's with BatchNorm,
    or (``spectral``) DM-GAN's with its ``code/spectral.py`` power iteration on every conv."""
    norm: dict[str, Any] = {"norm": "batch"}
    if spectral:
        norm = {"norm": "spectral", "spectral_norm": "reference"}
    return [
        {
            "type": "stagewise",
            "params": {
                "resolution": r,
                "df": df,
                "text_dim": nef,
                **norm,
                "conditioning": {"type": "sentence"},
            },
        }
        for r in resolutions
    ]


def loss_slots(where: str, last_stage: int, matching: bool) -> list[dict[str, Any]]:
    """AttnGAN's losses: adversarial with mismatched pairs, CA's KL and, with a matcher, the
    DAMSM word and sentence terms on the last image, weight LAMBDA."""
    out: list[dict[str, Any]] = [{"type": "bce_mismatch"}, {"type": "ca_kl"}]
    if matching:
        weight = DAMSM_LAMBDA[where]
        for name in ("word_region_matching", "sentence_matching"):
            out.append({"type": name, "stages": [last_stage], "weight": weight})
    return out
