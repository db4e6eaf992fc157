"""The papers' evaluation protocols as named presets (``eval.protocol``), as plain data.

A preset fixes what the paper's released evaluation fixed: how many images (and how many passes
over the test split may give them), and the metric slots with their params (feature network,
resize and its dtype, the uint8 round-trip, R-precision's candidates, CMD's space). Every choice
names the reference file and line it comes from (the mirrors' HEAD commits in ``REFERENCES``);
``[inferred]`` marks a choice the release does not show and the preset takes from its lineage.

The preset fills in what the recipe does not set (``fill_eval``, run when the ``eval`` section
is validated): a recipe's explicit ``eval.num_samples`` wins, and its ``eval.metrics`` entries
replace the preset's entries of the same metric type (the preset's other metrics stay).
Applied at validation, so ``recipe.resolved.yaml`` holds the preset's values and a later
``t2i-stages eval`` of the run reproduces them. ``preset_block`` is what ``metrics.json``
records: every field the preset fixed, and which ones the recipe or the command line overrode.

Plain data and pydantic only: no torch, no plugin imports (the metric types are names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .protocol_presets import (  # noqa: F401 - the presets, re-exported beside their logic
    PRESETS,
    REFERENCES,
    WHOLE_SPLIT,
    FixedMetric,
    Preset,
    ProtocolName,
)


def get_preset(name: str) -> Preset:
    from ..errors import T2IError

    try:
        return PRESETS[name]
    except KeyError:
        raise T2IError(
            f"unknown evaluation protocol '{name}'; known: {', '.join(PRESETS)}"
        ) from None


def fill_eval(cfg: Any) -> None:
    """Put ``cfg.protocol``'s choices into an ``eval`` section where the recipe set nothing.

    ``cfg.num_samples`` stays when the recipe set it; the recipe's ``cfg.metrics`` entries stay
    and replace the preset's entries of the same type. Idempotent, so a resolved recipe that
    already holds the preset's values validates to the same section.
    """
    if cfg.protocol is None:
        return
    from .slots import MetricSlot

    preset = get_preset(cfg.protocol)
    given = cfg.model_fields_set
    if "num_samples" not in given:
        cfg.num_samples = preset.num_samples
    own = list(cfg.metrics) if "metrics" in given else []
    types = {s.type for s in own}
    cfg.metrics = own + [
        MetricSlot(type=m.type, params=dict(m.params))
        for m in preset.metrics
        if m.type not in types
    ]


def with_protocol(recipe: Any, name: str, registry: Any) -> Any:
    """``recipe`` evaluated under preset ``name`` (``t2i-stages eval --protocol``): its ``eval``
    section keeps batch size, precision and attribute_accuracy, and takes the preset's sample
    count and metrics (validated against their plugins) whatever the run's recipe listed."""
    get_preset(name)
    cfg = recipe.eval
    keep = {
        k: getattr(cfg, k)
        for k in type(cfg).model_fields
        if k not in ("num_samples", "metrics", "protocol")
    }
    new = type(cfg)(**keep, protocol=name)
    for slot in new.metrics:
        slot.resolve(registry.validate_params("metric", slot.type, slot.params))
    return recipe.model_copy(update={"eval": new})


def passes(cfg: Any) -> int:
    """How many passes over the test split the sample stream may make (1 without a preset)."""
    return get_preset(cfg.protocol).passes if getattr(cfg, "protocol", None) else 1


def preset_block(
    cfg: Any,
    registry: Any,
    command_line: Mapping[str, Any] | None = None,
    applied_by: str = "eval.protocol",
) -> dict[str, Any] | None:
    """What ``metrics.json`` records of the preset: every field it fixed (with its source),
    and which of them the recipe (a different value) or the command line overrode."""
    if cfg.protocol is None:
        return None
    preset = get_preset(cfg.protocol)
    overridden: list[str] = []
    if cfg.num_samples != preset.num_samples:
        overridden.append("num_samples")
    for kind in dict.fromkeys(m.type for m in preset.metrics):
        mine = [s for s in cfg.metrics if s.type == kind]
        fixed = [m for m in preset.metrics if m.type == kind]
        if not _same_slots(mine, fixed, registry):
            overridden.append(f"metrics.{kind}")
    extra = [s.type for s in cfg.metrics if s.type not in {m.type for m in preset.metrics}]
    cli = {k: v for k, v in (command_line or {}).items() if v is not None}
    return {
        "name": preset.name,
        "paper": preset.paper,
        "applied_by": applied_by,
        "references": dict(REFERENCES),
        "fixed": {
            "num_samples": preset.num_samples,
            "samples": preset.samples(),
            "passes": preset.passes,
            "samples_source": preset.samples_source,
            "metrics": [m.as_dict() for m in preset.metrics],
        },
        "overridden_by_recipe": overridden,
        "added_by_recipe": extra,
        "overridden_by_command_line": sorted(cli),
        "command_line": cli,
        "notes": list(preset.notes),
    }


def _same_slots(mine: list[Any], fixed: list[FixedMetric], registry: Any) -> bool:
    """Whether the recipe's slots of one type are the preset's (params compared resolved)."""
    if len(mine) != len(fixed):
        return False
    for slot, m in zip(mine, fixed, strict=True):
        ours = slot.resolved or registry.validate_params("metric", slot.type, slot.params)
        if ours != registry.validate_params("metric", m.type, dict(m.params)):
            return False
    return True
