"""What a plugin hands to the registry for each component it provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

# Upper bounds for the sizes a params model accepts: far above any published configuration,
# low enough that a typo (``1e30``) is a validation error with its line, not a hang or an
# allocator's crash minutes later.
MAX_CHANNELS = 16_384
"""Channels, widths and feature sizes."""
MAX_LAYERS = 256
"""Blocks, layers, heads and up-samplings of one component."""
MAX_RESOLUTION = 4_096
"""Image sides in pixels."""
MAX_TOKENS = 4_096
"""Words or tokens of one caption."""
MAX_VOCAB = 10_000_000
"""Entries of a vocabulary."""
MAX_SAMPLES = 100_000_000
"""Images or captions of a dataset, an evaluation or a subset."""
MAX_CAPTIONS = 1_000
"""Captions of one image."""
MAX_BATCH = 65_536
"""Samples in one batch."""
MAX_STEPS = 1_000_000_000
"""Optimizer steps, and every-N-steps intervals."""
MAX_MINUTES = 1_000_000.0
"""Wall-clock budgets in minutes (about two years)."""


class Params(BaseModel):
    """Base class for plugin parameter models: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """For components that take no parameters."""


@dataclass(frozen=True)
class ComponentSpec:
    """A component a plugin provides.

    ``factory(params, **context)`` builds it from its validated ``params`` model instance; the
    context keywords are whatever the caller of that kind documents (for example a stage gets
    ``in_channels`` and ``text_dim``).
    """

    factory: Callable[..., Any]
    params: type[BaseModel] = NoParams
    summary: str = ""
    prepare: Callable[..., Any] | None = None
    """``prepare(params, ctx: PrepareContext) -> Prepared``: the work a run needs done before
    it uses the component (a matcher's pretraining); see ``t2i_stages.lifecycle``."""
