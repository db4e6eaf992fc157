"""Typed YAML recipes: schema, sources (extends/--set), and two-phase validation."""

from .schema import (
    DataConfig,
    EvalConfig,
    LRScheduleConfig,
    OptimizerConfig,
    Recipe,
    TrainConfig,
)
from .slots import (
    ConditioningSlot,
    DatasetSlot,
    DiscriminatorSlot,
    ExporterSlot,
    FusionSlot,
    GeneratorSlot,
    LossSlot,
    MatcherSlot,
    MetricSlot,
    Slot,
    StageSlot,
    TextEncoderSlot,
)
from .sources import read_recipe
from .validate import load_recipe, resolved_recipe, validate_recipe

__all__ = [
    "ConditioningSlot",
    "DataConfig",
    "DatasetSlot",
    "DiscriminatorSlot",
    "EvalConfig",
    "ExporterSlot",
    "FusionSlot",
    "GeneratorSlot",
    "LossSlot",
    "MatcherSlot",
    "MetricSlot",
    "LRScheduleConfig",
    "OptimizerConfig",
    "Recipe",
    "Slot",
    "StageSlot",
    "TextEncoderSlot",
    "TrainConfig",
    "load_recipe",
    "read_recipe",
    "resolved_recipe",
    "validate_recipe",
]
