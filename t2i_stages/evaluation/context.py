"""What a metric plugin receives: the run's parts it may need, then the samples batch by batch.

A metric is streamed (the evaluation never holds every image): it has ``name`` and

- ``start(ctx: EvalContext)``: called once, after the first batch is generated (so
  ``ctx.resolution`` is known), to build extractors and reset its state;
- ``update(batch: EvalBatch)``: called for every batch; keeps only what the number needs
  (features, per-image scores or running sums), never the images;
- ``finish() -> MetricResult``: the numbers, from the kept state.

``StreamingMetric`` is a base class for that shape; a metric without it is refused by name.
Factories are called as ``factory(params, registry=...,
**ctx)`` like every component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch

from .samples import EvalBatch, EvalSamples

Better = Literal["higher", "lower", "neutral"]
BETTER = ("higher", "lower", "neutral")


@dataclass
class MetricResult:
    """Headline numbers (``values``, with ``std`` where a spread exists) and how they were made.

    ``protocol`` records everything the numbers depend on beyond the shared sample protocol
    (extractor and weight hash, reference set, resizer, folds, seeds...); ``details`` holds
    secondary numbers (per-attribute accuracies, the three CMD distances...). ``better`` says
    which way a value is better: one word for every value or one per value name, "neutral"
    (the default, and any value not named) when neither is; ablation tables draw it as an arrow.
    """

    values: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # per value, shown in the table
    better: Better | dict[str, Better] = "neutral"

    def __post_init__(self) -> None:
        given = [self.better] if isinstance(self.better, str) else list(self.better.values())
        wrong = [b for b in given if b not in BETTER]
        if wrong:
            from ..errors import T2IError

            raise T2IError(f"MetricResult.better: {wrong[0]!r} is not one of {', '.join(BETTER)}")

    def direction(self, name: str) -> Better:
        """Which way value ``name`` is better."""
        if isinstance(self.better, str):
            return self.better
        return self.better.get(name, "neutral")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": self.values}
        better = {k: self.direction(k) for k in self.values if self.direction(k) != "neutral"}
        if better:
            out["better"] = better
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
    """The run's matcher, datasets and registry (lazily built parts) shared by every metric.

    ``resolution`` and ``num_samples`` describe the stream; ``samples`` is set only for metrics
    that use the all-images ``compute(ctx)`` interface (or when a caller built it by hand).
    """

    samples: EvalSamples | None = None
    registry: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    recipe: Any = None
    test_data: Any = None
    matcher: Any = None  # the matcher the generator was trained against (frozen), if any
    vocab: Any = None
    train_data_fn: Callable[[], Any] | None = None  # builds the train split (held-out encoders)
    batch_size: int = 64
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)
    resolution: int | None = None  # side of the evaluated images, known after the first batch
    num_samples: int | None = None

    def __post_init__(self) -> None:
        if self.samples is not None:
            self.resolution = self.resolution or self.samples.resolution
            self.num_samples = self.num_samples or len(self.samples)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """Compute once per evaluation (e.g. an extractor shared by FID and KID)."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def train_data(self) -> Any:
        if self.train_data_fn is None:
            from ..errors import T2IError

            raise T2IError("this evaluation has no access to the train split")
        return self.cached("train_data", self.train_data_fn)


@runtime_checkable
class Metric(Protocol):
    """A streamed metric: ``start(ctx)``, ``update(batch)`` per batch, ``finish()``."""

    name: str

    def start(self, ctx: EvalContext) -> None: ...

    def update(self, batch: EvalBatch) -> None: ...

    def finish(self) -> MetricResult: ...


def is_streaming(metric: Any) -> bool:
    """Whether ``metric`` has the streamed interface the runner calls."""
    return all(callable(getattr(metric, m, None)) for m in ("start", "update", "finish"))


class StreamingMetric:
    """Base class for streamed metrics; subclasses implement ``start``, ``update``, ``finish``.

    ``compute(ctx)`` streams ``ctx.samples`` through them (a test or a notebook holding every
    image); the runner always streams.
    """

    name = "metric"

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def update(self, batch: EvalBatch) -> None:
        raise NotImplementedError

    def finish(self) -> MetricResult:
        raise NotImplementedError

    def compute(self, ctx: EvalContext) -> MetricResult:
        """Score ``ctx.samples`` (already in memory) batch by batch."""
        if ctx.samples is None:
            from ..errors import T2IError

            raise T2IError(f"metric '{self.name}': compute(ctx) needs ctx.samples")
        self.start(ctx)
        for batch in ctx.samples.batches(ctx.batch_size):
            self.update(batch)
        return self.finish()
