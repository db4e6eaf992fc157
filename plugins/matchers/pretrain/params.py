"""How a matcher is pretrained: the ``pretrain`` block of a matcher's params in a recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from t2i_stages.plugin import (
    MAX_BATCH,
    MAX_LAYERS,
    MAX_MINUTES,
    MAX_SAMPLES,
    MAX_STEPS,
    Beta,
    Params,
)


class PretrainParams(Params):
    """How a matcher is pretrained and evaluated (part of the matcher's params in a recipe)."""

    enabled: bool = Field(
        True, description="Pretrain this matcher before GAN training when it is not trained yet."
    )
    weights: str | None = Field(
        None,
        description="A trained matcher's .safetensors file to load instead of pretraining "
        "(its config.json must sit beside it).",
    )
    steps: int = Field(3000, le=MAX_STEPS, ge=0, description="Optimizer steps (upper bound).")
    max_minutes: float | None = Field(
        5.0,
        le=MAX_MINUTES,
        gt=0,
        description="Wall-clock budget for training (excluding evaluation); null = none.",
    )
    batch_size: int = Field(
        32, le=MAX_BATCH, ge=2, description="Batch size (also the number of negatives)."
    )
    lr: float = Field(
        2e-3, le=10.0, gt=0, description="Adam learning rate (DAMSM's ENCODER_LR = 0.002)."
    )
    betas: tuple[Beta, Beta] = Field((0.5, 0.999), description="Adam betas, each in [0, 1).")
    weight_decay: float = Field(0.0, le=10.0, ge=0, description="Adam weight decay.")
    warmup_steps: int = Field(
        50, le=MAX_STEPS, ge=0, description="Linear learning-rate warm-up steps."
    )
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Learning rate after the warm-up: constant, or a cosine decay to zero over "
        "the run, measured as the larger of steps/'steps' and seconds/'max_minutes' (so a "
        "time-capped run decays over its time budget, whatever the machine's speed).",
    )
    grad_clip: float | None = Field(
        None,
        le=1e6,
        gt=0,
        description="Clip the gradient norm (DAMSM clips the RNN at 0.25); null = off.",
    )
    word_weight: float = Field(
        1.0, le=1e6, ge=0, description="Weight of the word-region loss W0 + W1."
    )
    word_batch: int | None = Field(
        None,
        le=MAX_BATCH,
        ge=2,
        description="Compute the word-region loss on the first N pairs of each batch only (its "
        "cost grows with the batch squared times words times regions); null = the whole batch.",
    )
    word_grad: bool = Field(
        True,
        description="False: the word-region loss does not train the text encoder (its word "
        "features enter through a stop-gradient). With the small CNN's region_grad: false, "
        "the word loss then trains only the region projection and cannot slow the sentence "
        "objective, which carries R-precision.",
    )
    sentence_weight: float = Field(
        1.0, le=1e6, ge=0, description="Weight of the sentence loss S0 + S1."
    )
    gamma1: float = Field(4.0, le=1e4, gt=0, description="γ1 of the word-region attention.")
    gamma2: float = Field(5.0, le=1e4, gt=0, description="γ2 of the word-region score.")
    gamma3: float = Field(10.0, le=1e4, gt=0, description="γ3 of the logits.")
    class_masking: bool = Field(True, description="Mask same-class negatives (§6.1.8).")
    resolution: int = Field(
        -1,
        ge=-MAX_LAYERS,
        le=MAX_LAYERS,
        description="Which image of the dataset's resolution list to train on (-1 = largest).",
    )
    eval_samples: int = Field(
        1000, le=MAX_SAMPLES, ge=1, description="Test images used for R-precision."
    )
    candidates: int = Field(
        100, le=MAX_SAMPLES, ge=2, description="Captions ranked per image (1 true + others)."
    )
    folds: int = Field(10, le=MAX_LAYERS, ge=1, description="Folds for the R-precision mean ± std.")
    eval_every: int | None = Field(
        None,
        le=MAX_STEPS,
        ge=1,
        description="Also evaluate every N steps (history only); null = at the end.",
    )
    log_every: int = Field(50, le=MAX_STEPS, ge=1, description="Log the loss every N steps.")
    seed: int | None = Field(None, description="Seed; null = the caller's (the recipe's) seed.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Autocast for pretraining: auto = bf16 where the device runs it natively, "
        "fp32 elsewhere (see train.precision); the losses are computed in fp32.",
    )
