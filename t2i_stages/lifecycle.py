"""A component's ``prepare`` step: work a component needs before a run can use it.

A matcher must be pretrained on the run's data (or loaded from its cache) before the GAN
trains against it. The core knows nothing of how: a plugin's ``ComponentSpec(prepare=...)``
is called by the assembler with a ``PrepareContext`` (the datasets, the seed, the device, a
way to build the component afresh) and returns the ready component as ``Prepared``. A
component without a prepare step is simply built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PrepareContext:
    """What a prepare step is given."""

    name: str  # the slot's type (the component's registered name)
    build: Callable[[], Any]  # a fresh component, built through the registry with its context
    train_data: Any
    test_data: Any
    dataset_key: Any  # what describes the data in a cache key (the recipe's resolved dataset)
    seed: int  # the recipe's seed
    device: Any
    log: Callable[[str], None]
    context: dict[str, Any] = field(default_factory=dict)  # the factory context (vocabulary)
    registry: Any = None


@dataclass
class Prepared:
    """A ready component, what to report about it, and which of its tensors a run saves."""

    component: Any
    report: dict[str, Any] | None = None  # recorded in metrics.json (e.g. R-precision)
    keep: list[str] = field(default_factory=list)  # state-dict keys a checkpoint holds


class PrepareStopped(Exception):
    """A signal stopped a prepare step at a safe point; what it reached is kept (a cache marked
    incomplete) and the next run continues it. ``what`` names the step for the message."""

    def __init__(self, message: str, signal_name: str, what: str):
        super().__init__(message)
        self.signal_name, self.what = signal_name, what
