"""What a metric plugin receives: the generated samples and the run's parts it may need.

A metric is any object with ``name`` and ``compute(ctx: EvalContext) -> MetricResult``; its
factory is called as ``factory(params, registry=..., **ctx)`` like every component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .samples import EvalSamples


@dataclass
class MetricResult:
    """Headline numbers (``values``, with ``std`` where a spread exists) and how they were made.

    ``protocol`` records everything the numbers depend on beyond the shared sample protocol
    (extractor and weight hash, reference set, resizer, folds, seeds...); ``details`` holds
    secondary numbers (per-attribute accuracies, the three CMD distances...).
    """

    values: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # per value, shown in the table

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": self.values}
        if self.std:
            out["std"] = self.std
        if self.notes:
            out["notes"] = self.notes
        if self.details:
            out["details"] = self.details
        out["protocol"] = self.protocol
        return out


@dataclass
class EvalContext:
    """Generated samples plus the run's matcher, datasets and registry (lazily built parts)."""

    samples: EvalSamples
    registry: Any
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    recipe: Any = None
    test_data: Any = None
    matcher: Any = None  # the matcher the generator was trained against (frozen), if any
    vocab: Any = None
    train_data_fn: Callable[[], Any] | None = None  # builds the train split (held-out encoders)
    batch_size: int = 64
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """Compute once per evaluation (e.g. real-image features shared by FID and KID)."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def train_data(self) -> Any:
        if self.train_data_fn is None:
            from ..errors import T2IError

            raise T2IError("this evaluation has no access to the train split")
        return self.cached("train_data", self.train_data_fn)


class Metric(Protocol):
    name: str

    def compute(self, ctx: EvalContext) -> MetricResult: ...
