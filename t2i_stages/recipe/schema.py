"""The static recipe schema (phase 1 of validation).

Component slots hold ``{type, params}``; the plugin-specific params are checked in phase 2
(``recipe.validate``) once the registry is known.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .protocols import ProtocolName, fill_eval
from .slots import (
    DatasetSlot,
    DiscriminatorSlot,
    ExporterSlot,
    GeneratorSlot,
    LossSlot,
    MatcherSlot,
    MetricSlot,
    TextEncoderSlot,
)


class Strict(BaseModel):
    """Every recipe section forbids unknown keys, so a typo is an error, not a silent default.

    Floats must be finite: a NaN learning rate or an infinite budget is a typo, not a setting.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataConfig(Strict):
    dataset: DatasetSlot
    batch_size: int = Field(16, gt=0, description="Global batch size (split across ranks).")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")


Beta = Annotated[float, Field(ge=0, lt=1)]


class OptimizerConfig(Strict):
    type: Literal["adam", "adamax", "adamw"] = "adam"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[Beta, Beta] = Field(
        (0.5, 0.999), description="Adam's decay rates, each in [0, 1)."
    )
    weight_decay: float = Field(0.0, ge=0)


class AugmentConfig(Strict):
    """DiffAugment of every discriminator input (t2i_stages/training/augment.py)."""

    policy: list[Literal["color", "translation", "cutout"]] = Field(
        default_factory=list,
        description="Transforms applied, in order, to real and generated images alike before "
        "every discriminator (its update and G's); empty = none.",
    )
    translation: float = Field(0.125, ge=0, le=0.5, description="Largest shift, of the side.")
    cutout: float = Field(0.5, gt=0, le=1, description="Side of the cut-out square, of the side.")
    matcher: bool = Field(
        False,
        description="Augment the generated images the matching losses score as well (a matcher "
        "trained from scratch is easily fooled by patterns aligned with its patches; the "
        "augmentation takes that alignment away).",
    )


class LRScheduleConfig(Strict):
    """How both optimizers' learning rates fall over the run (t2i_stages/training/schedule.py).

    The run's progress is the larger of ``step / max_steps`` and, in a run with
    ``max_minutes``, the minutes trained since this (re)start over ``max_minutes``: a
    time-bound run reaches its final rate when its clock stops it, whatever the CPU.
    """

    kind: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="constant: the optimizers' lr throughout (the references); linear or "
        "cosine: from lr at progress `start` down to lr * `final` at the run's end.",
    )
    start: float = Field(0.5, ge=0, lt=1, description="Progress (0-1) at which the decay begins.")
    final: float = Field(0.0, ge=0, le=1, description="The last rate, as a fraction of lr.")


class TrainConfig(Strict):
    max_steps: int = Field(1000, ge=0, description="Generator updates to run.")
    max_minutes: float | None = Field(None, gt=0, description="Wall-clock budget; stops early.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast for training. auto: bf16 where the device runs it natively (CUDA "
        "with bf16, a CPU with AVX512-BF16 or AMX), fp32 elsewhere (an AVX2-only CPU emulates "
        "bf16, 14x slower); fp16 (with a GradScaler) is an explicit CUDA choice. The run records "
        "what it chose and why (t2i-stages env shows it for this machine).",
    )
    grad_accum: int = Field(1, ge=1)
    init_from: str | None = Field(
        None,
        description="A run folder (one `t2i-stages import` wrote, say) whose newest checkpoint's "
        "weights start this run: the generator, and the discriminators, matcher and text "
        "encoder where it holds them. Optimizer state, step and RNG start fresh (for fine-tuning; "
        "--resume continues a run instead).",
    )
    ema_decay: float | None = Field(0.999, ge=0, lt=1, description="EMA of G; null disables.")
    ema_warmup: bool = Field(
        False,
        description="Use decay min(ema_decay, (1+t)/(10+t)) at update t, so that a short run's EMA "
        "is not mostly its random init (the references use a constant 0.999 over 100k+ steps). "
        "The ramp reaches ema_decay only at t = (10 d - 1) / (1 - d), about 9,000 updates for "
        "0.999, so below that a larger ema_decay changes nothing.",
    )
    augment: AugmentConfig = Field(
        default_factory=AugmentConfig,
        description="Differentiable augmentation of what the discriminators see (DiffAugment).",
    )
    optim_g: OptimizerConfig = Field(default_factory=OptimizerConfig)
    optim_d: OptimizerConfig = Field(default_factory=OptimizerConfig)
    lr_schedule: LRScheduleConfig = Field(
        default_factory=LRScheduleConfig,
        description="Decay of G's and the Ds' learning rates towards the end of the run "
        "(constant by default).",
    )
    log_every: int = Field(50, ge=1)
    sample_every: int = Field(500, ge=1)
    ckpt_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch CPU threads; null: one per core that other work leaves free (busy "
        "cores are measured at the start, and oversubscription is warned about).",
    )
    skip_nonfinite: int = Field(
        0,
        ge=0,
        description="How many updates with a NaN/inf loss or gradient may be skipped over the run "
        "(their optimizer step is dropped) before it stops; 0 stops at the first.",
    )
    finite_check: Literal["step", "deferred"] = Field(
        "step",
        description="step: every D and G update is checked for NaN/inf before it is applied and the "
        "culprit loss or gradient is named (one host sync per update); deferred: no host sync in "
        "the loop, the fused optimizer drops a non-finite update on the device and the count is read "
        "at logging steps (needs adam/adamw with fused_optimizer; the GPU speed setting).",
    )
    fused_optimizer: bool = Field(
        True,
        description="Use torch's fused Adam/AdamW kernels where the device has them (else foreach).",
    )
    channels_last: bool = Field(
        False,
        description="Keep G, the Ds and the images in channels-last memory format (faster "
        "convolutions on GPUs, above all with bf16/fp16).",
    )
    compile: bool = Field(
        False,
        description="torch.compile the generator and discriminators for training (the first steps "
        "compile; weights, checkpoints and the EMA are those of the plain modules).",
    )
    text_cache: bool = Field(
        False,
        description="Encode each caption once per run with the frozen text encoder and reuse its "
        "features (per caption: its token ids and mask, under a hash of the encoder's weights), "
        "instead of encoding every batch at every step. Bit-identical to encoding each step: the "
        "first batch checks that a caption's features do not depend on the rest of its batch, "
        "and the cache turns itself off (saying so) where they do. Derived data: never "
        "checkpointed. Saves time once captions recur (from the second epoch on).",
    )
    text_cache_max_mb: float = Field(
        1024.0,
        gt=0,
        description="Memory bound of train.text_cache, MiB, on the training device (one caption "
        "costs 4 * D * (T + 1) bytes in fp32: 13 KB for DM-GAN's D 256, T 12; 26 KB for GR-GAN's "
        "D 512; COCO's 414k training captions would need 5.5 and 11 GB). Past the bound, new "
        "captions are encoded every time they come (nothing is evicted).",
    )
    merge_d_optimizers: bool = Field(
        False,
        description="One optimizer over all discriminators (a parameter group per D: one fused or "
        "multi-tensor step instead of one per D); the weights are equal to separate optimizers' "
        "and checkpoints keep one optimizer state per D, so a run resumes either way.",
    )


class EvalConfig(Strict):
    num_samples: int = Field(2000, ge=1)
    batch_size: int = Field(64, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Autocast for generating the evaluated images (auto as train.precision); "
        "metric networks always run in fp32, as their protocols do.",
    )
    metrics: list[MetricSlot] = Field(default_factory=list)
    attribute_accuracy: bool = Field(
        True,
        description="Add the metrics the dataset advertises as its own (its dataset_metrics: "
        "the shapes dataset's oracle reads each image's attributes back); named for that one.",
    )
    protocol: ProtocolName | None = Field(
        None,
        description="A paper's evaluation protocol as a preset (attngan, dmgan, dfgan, grgan, "
        "clean: docs/metrics.md#protocol-presets): it fills num_samples and metrics where this "
        "section does not set them (an explicit metrics entry replaces the preset's entries of "
        "its type); null = no preset.",
    )

    @model_validator(mode="after")
    def _apply_protocol(self) -> EvalConfig:
        fill_eval(self)
        return self


class Recipe(Strict):
    """A complete experiment: data, model components, losses, training and evaluation."""

    name: str = Field(description="Run name; the default output folder is runs/<name>/.")
    description: str = ""
    seed: int = 0
    data: DataConfig
    text_encoder: TextEncoderSlot | None = None
    matcher: MatcherSlot | None = None
    generator: GeneratorSlot
    discriminators: list[DiscriminatorSlot] = Field(default_factory=list)
    losses: list[LossSlot] = Field(default_factory=list)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    export: ExporterSlot | None = None
    # Records a run writes into its recipe.resolved.yaml, so that the file validates and runs
    # again as it is; neither is read back (a rerun resolves its plugins and auto settings anew).
    plugins: dict[str, dict[str, str]] | None = Field(
        None, description="Written by a run: the plugin, package and version of each component."
    )
    runtime: dict[str, Any] | None = Field(
        None,
        description="Written by a run: what the auto settings (precision, threads) resolved to on "
        "its machine, and why.",
    )
