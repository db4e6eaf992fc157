"""Helpers for the model tests: tiny model slots, paper-size recipes and random text."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from t2i_stages.recipe import DiscriminatorSlot, GeneratorSlot, Recipe
from t2i_stages.types import TextFeatures

REPO = Path(__file__).resolve().parents[2]
RECIPES = {
    "attngan": REPO / "recipes/coco/attngan.yaml",
    "dmgan": REPO / "recipes/coco/dmgan.yaml",
    "grgan": REPO / "recipes/coco/grgan.yaml",
    "dfgan": REPO / "recipes/dfgan-coco-size.yaml",
}

TEXT_DIM, Z_DIM, C_DIM, T = 16, 8, 6, 7


def recipe_from_file(name: str) -> Recipe:
    """A paper-size recipe checked by the static schema (the coco dataset plugin may be absent)."""
    with open(RECIPES[name], encoding="utf-8") as fh:
        return Recipe.model_validate(yaml.safe_load(fh))


def random_text(
    b: int = 2, d: int = TEXT_DIM, t: int = T, lengths=None, seed: int = 0
) -> TextFeatures:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths if lengths is not None else [t] * b)
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return TextFeatures(
        torch.randn(b, d, t, generator=g), torch.randn(b, d, generator=g), mask, lengths
    )


def _refine(cond: str, fusion: str, **fusion_params) -> dict:
    return {
        "type": "refine",
        "params": {
            "conditioning": {"type": cond},
            "fusion": {"type": fusion, "params": fusion_params},
            "residual_blocks": 1,
        },
    }


def tiny_generator(kind: str) -> GeneratorSlot:
    """Small versions of the four generators: 16 -> 32 -> 64 px (DF-GAN: one 32 px stage)."""
    if kind == "dfgan":
        return GeneratorSlot.model_validate(
            {
                "type": "dfgan",
                "params": {"nf": 4, "z_dim": Z_DIM, "text_dim": TEXT_DIM, "resolution": 32},
            }
        )
    fusion = "word_attention" if kind == "attngan" else "dynamic_memory"
    second = "sentence_tiled" if kind == "grgan" else "words"
    initial = {
        "type": "initial",
        "params": {"conditioning": {"type": "ca", "params": {"c_dim": C_DIM}}, "upsamples": 2},
    }
    return GeneratorSlot.model_validate(
        {
            "type": "stagewise",
            "params": {
                "text_dim": TEXT_DIM,
                "z_dim": Z_DIM,
                "gf": 4,
                "stages": [initial, _refine(second, fusion), _refine("words", fusion)],
            },
        }
    )


def tiny_discriminators(kind: str) -> list[DiscriminatorSlot]:
    if kind == "dfgan":
        return [
            DiscriminatorSlot.model_validate(
                {
                    "type": "dfgan",
                    "params": {"nf": 4, "text_dim": TEXT_DIM, "unused_shortcuts": False},
                }
            )
        ]
    norm = "batch" if kind == "attngan" else "spectral"
    conds = ["sentence"] * 3 if kind != "grgan" else ["none", "sentence", "mean_words"]
    uncond = [True] * 3 if kind != "grgan" else [True, False, False]
    cond_head = [True, True, True] if kind != "grgan" else [False, True, True]
    return [
        DiscriminatorSlot.model_validate(
            {
                "type": "stagewise",
                "params": {
                    "df": 4,
                    "text_dim": TEXT_DIM,
                    "norm": norm,
                    "conditioning": {"type": c},
                    "uncond_head": u,
                    "cond_head": h,
                },
            }
        )
        for c, u, h in zip(conds, uncond, cond_head, strict=True)
    ]
