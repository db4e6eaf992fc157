"""Component slots: the places in a recipe (or in a plugin's params) that name a plugin.

A slot is validated in two phases. Phase 1 (the static recipe) only checks it is
``{type: <registered name>, params: {...}}``; phase 2 looks ``type`` up in the registry and
validates ``params`` with that plugin's own params model (see ``recipe.validate``).
Plugin params models may contain slots themselves (a generator's stages, a stage's fusion
block), and these are resolved the same way, recursively.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class Slot(BaseModel):
    """``{type: name, params: {...}}`` naming a registered component of ``kind``."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = ""

    type: str = Field(description="Name of a registered plugin component.")
    params: dict[str, Any] = Field(default_factory=dict)
    _resolved: BaseModel | None = PrivateAttr(default=None)

    @field_validator("type")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # A recipe may only name registered plugins: never an import path or a file.
        if not _NAME.match(value):
            raise ValueError(
                f"'{value}' is not a plugin name (letters, digits, '_' and '-'); recipes name "
                "registered plugins, never import paths or files"
            )
        return value

    @property
    def resolved(self) -> BaseModel | None:
        """The params validated by the plugin's own model (set by phase-2 validation)."""
        return self._resolved

    def resolve(self, params: BaseModel) -> None:
        self._resolved = params


class DatasetSlot(Slot):
    kind: ClassVar[str] = "dataset"


class TextEncoderSlot(Slot):
    kind: ClassVar[str] = "text_encoder"


class ConditioningSlot(Slot):
    kind: ClassVar[str] = "conditioning"


class FusionSlot(Slot):
    kind: ClassVar[str] = "fusion"


class StageSlot(Slot):
    kind: ClassVar[str] = "stage"


class GeneratorSlot(Slot):
    kind: ClassVar[str] = "generator"


class DiscriminatorSlot(Slot):
    kind: ClassVar[str] = "discriminator"


class MatcherSlot(Slot):
    kind: ClassVar[str] = "matcher"


class LossSlot(Slot):
    """A loss, with where it applies and how much it weighs."""

    kind: ClassVar[str] = "loss"
    weight: float = Field(
        1.0, allow_inf_nan=False, description="Multiplier of this loss in the total (finite)."
    )
    stages: list[int] | None = Field(
        None, description="Stage indices (0-based) the loss applies to; null means every stage."
    )


class MetricSlot(Slot):
    kind: ClassVar[str] = "metric"


class ExporterSlot(Slot):
    kind: ClassVar[str] = "exporter"


SLOT_TYPES: dict[str, type[Slot]] = {
    cls.kind: cls
    for cls in (
        DatasetSlot,
        TextEncoderSlot,
        ConditioningSlot,
        FusionSlot,
        StageSlot,
        GeneratorSlot,
        DiscriminatorSlot,
        MatcherSlot,
        LossSlot,
        MetricSlot,
        ExporterSlot,
    )
}
