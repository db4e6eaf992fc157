"""What a plugin hands to the registry for each component it provides."""

from __future__ import annotations

import contextlib
import importlib
import sys
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


Loader = Callable[..., Any] | str
"""A callable, or where to import it from: ``"package.module:attribute"``."""


@dataclass(frozen=True)
class ComponentSpec:
    """A component a plugin provides.

    ``factory(params, **context)`` builds it from its validated ``params`` model instance; the
    context keywords are whatever the caller of that kind documents (for example a stage gets
    ``in_channels`` and ``text_dim``).

    ``factory`` and ``prepare`` may be given as ``"package.module:attribute"`` strings, imported
    the first time the component is built. With the params model in a module that imports no
    torch, registering the plugin imports none either, so ``plugins``, ``validate`` and
    ``generate --onnx`` stay torch-free (the built-ins all do this).

    The optional static facts let ``validate`` check a recipe across components without
    building anything (else it builds the generator on the meta device, and the losses):

    - ``role`` (losses): ``"adversarial"``, ``"matching"``, ``"kl"`` or ``"diversity"``; the built loss must
      still satisfy that role's protocol (``t2i_stages.contracts``).
    - ``resolutions`` (generators): ``resolutions(params, registry) -> list[int] | None``, the
      stage resolutions the generator will have (None: cannot tell without building).
    - ``out_resolution`` (stages): ``out_resolution(params, in_resolution) -> int | None``,
      which a composing generator's ``resolutions`` may use.
    """

    factory: Loader
    params: type[BaseModel] = NoParams
    summary: str = ""
    prepare: Loader | None = None
    """``prepare(params, ctx: PrepareContext) -> Prepared``: the work a run needs done before
    it uses the component (a matcher's pretraining); see ``t2i_stages.lifecycle``."""
    role: str | None = None
    resolutions: Callable[..., list[int] | None] | None = None
    out_resolution: Callable[..., int | None] | None = None

    def load_factory(self) -> Callable[..., Any]:
        """The factory, imported if it was given by name."""
        return load_callable(self.factory)

    def load_prepare(self) -> Callable[..., Any] | None:
        """The ``prepare`` step, imported if it was given by name; None if there is none."""
        return None if self.prepare is None else load_callable(self.prepare)


def _import_outside_device_context(module_name: str) -> Any:
    """Import a module as an eager import at registration would have: a first build inside
    ``with torch.device("meta"):`` (phase 3, ``summary``) must not put the module's
    module-level tensors on the meta device for the rest of the process."""
    torch = sys.modules.get("torch")
    disable = getattr(getattr(torch, "_C", None), "DisableTorchFunction", None)
    with disable() if disable is not None else contextlib.nullcontext():
        return importlib.import_module(module_name)


def load_callable(target: Loader) -> Callable[..., Any]:
    """``target`` itself, or the attribute a ``"package.module:attribute"`` string names."""
    if not isinstance(target, str):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{target!r} is not a 'package.module:attribute' reference")
    obj: Any = _import_outside_device_context(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target!r} is not callable")
    return obj
