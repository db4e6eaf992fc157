"""Which metrics an evaluation runs: ``--metrics``, the recipe's ``eval.metrics``, or defaults.

Every metric slot is validated against its plugin like a recipe slot, so a typo in
``--metrics fid:extractr=x`` is one line naming the field; every metric is built before any
image is generated, so a missing asset fails first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from ..errors import T2IError
from ..recipe.slots import MetricSlot


def parse_metric_spec(text: str, registry: Any) -> MetricSlot:
    """``name`` or ``name:key=value:key=value`` (values read as YAML) -> a validated slot."""
    name, *pairs = text.strip().split(":")
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise T2IError(f"--metrics '{text}': '{pair}' is not key=value")
        k, v = pair.split("=", 1)
        params[k.strip()] = yaml.safe_load(v)
    return make_slot(name, params, registry, where=f"--metrics '{text}'")


def make_slot(name: str, params: dict[str, Any], registry: Any, where: str = "") -> MetricSlot:
    """A metric slot validated against the plugin's params (T2IError with the field otherwise)."""
    from ..recipe.validate import error_message, format_loc, resolve_slots
    from ..registry import unknown_name_message

    where = where or f"metric '{name}'"
    if name not in registry.components.get("metric", {}):
        raise T2IError(
            f"{where}: {unknown_name_message('metric', name, registry.names('metric'), registry.load_errors)}"
        )
    try:
        slot = MetricSlot(type=name, params=params)
        resolved = registry.validate_params("metric", name, params)
    except ValidationError as exc:
        err = exc.errors()[0]
        model = registry.get("metric", name).spec.params
        raise T2IError(f"{where}: {format_loc(err['loc'])}: {error_message(err, model)}") from None
    slot.resolve(resolved)
    problems = resolve_slots(resolved, registry, ("params",))
    if problems:
        loc, msg = problems[0]
        raise T2IError(f"{where}: {format_loc(loc)}: {msg}")
    return slot


def dataset_metrics(dataset: Any, registry: Any) -> list[MetricSlot]:
    """The metrics a dataset advertises as its own (``dataset.dataset_metrics``: the shapes
    dataset's oracle reads its attributes back), validated like any metric slot."""
    specs = getattr(dataset, "dataset_metrics", ()) or ()
    name = getattr(dataset, "name", type(dataset).__name__)
    return [
        make_slot(s["type"], dict(s.get("params", {})), registry, where=f"dataset '{name}'")
        for s in specs
    ]


def default_metric_slots(
    registry: Any, has_matcher: bool, own: list[MetricSlot], with_own: bool
) -> list[MetricSlot]:
    """What runs when a recipe lists no metrics: only what needs no downloaded asset."""
    slots = []
    if has_matcher:
        slots.append(make_slot("fid", {"extractor": "matcher"}, registry))
        slots.append(make_slot("r_precision", {"encoder": "run"}, registry))
    return slots + (own if with_own else [])


def choose_slots(
    recipe: Any,
    registry: Any,
    names: Iterable[str] | None,
    has_matcher: bool,
    dataset: Any = None,
) -> list[MetricSlot]:
    """``--metrics`` if given, else the recipe's ``eval.metrics``, else the defaults.

    ``eval.attribute_accuracy: true`` adds the metrics the test ``dataset`` advertises as its
    own (``dataset_metrics``) that the list does not already name.
    """
    cfg = recipe.eval if recipe is not None else None
    if names:
        return [parse_metric_spec(n, registry) for n in names]
    own = dataset_metrics(dataset, registry) if dataset is not None else []
    with_own = bool(cfg.attribute_accuracy) if cfg is not None else True
    if cfg is None or not cfg.metrics:
        return default_metric_slots(registry, has_matcher, own, with_own)
    slots = list(cfg.metrics)
    if with_own:
        slots += [s for s in own if not any(x.type == s.type for x in slots)]
    return slots


def build_metrics(
    slots: list[MetricSlot], registry: Any, device: torch.device
) -> list[tuple[str, MetricSlot, Any]]:
    """Build every metric first, so a missing asset fails before any image is generated."""
    out, seen = [], {}
    for slot in slots:
        seen[slot.type] = seen.get(slot.type, 0) + 1
        key = slot.type if seen[slot.type] == 1 else f"{slot.type}#{seen[slot.type]}"
        out.append((key, slot, registry.build("metric", slot, device=device)))
    return out
