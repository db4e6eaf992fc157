"""What a factory is built with, per kind: the keywords beside its params.

``registry.build(kind, slot, **context)`` calls ``factory(params, registry=..., **context)``.
Each kind's keywords are the fields of its dataclass here, so a misspelt key (``channel=`` for
``channels=``) is an error naming the kind, the plugin and the key, instead of a keyword the
factory's ``**ctx`` swallows and ignores. A factory may take any subset of its kind's fields.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any

from .errors import PluginError


@dataclass(frozen=True)
class DatasetContext:
    split: str = "train"  # "train" | "test"
    resolutions: list[int] | None = None  # per-stage image sizes (None: the params' default)
    quiet: bool = False  # no progress lines while a dataset renders or indexes its files


@dataclass(frozen=True)
class TextContext:
    """For text encoders and matchers: the dataset's vocabulary."""

    vocab: Any = None  # encode(text, max_words) -> (ids, mask); len() = vocab size
    vocab_size: int | None = None


@dataclass(frozen=True)
class ConditioningContext:
    text_dim: int | None = None  # D of the text features it reads


@dataclass(frozen=True)
class FusionContext:
    channels: int | None = None  # C of the image features it fuses text into
    text_dim: int | None = None  # the conditioning's output size


@dataclass(frozen=True)
class StageContext:
    channels: int | None = None  # the generator's base width (gf)
    text_dim: int | None = None
    z_dim: int | None = None
    in_channels: int | None = None  # the previous stage's out_channels (None for the first)
    in_resolution: int | None = None  # the previous stage's out_resolution
    index: int | None = None  # position in generator.params.stages


@dataclass(frozen=True)
class DiscriminatorContext:
    resolution: int | None = None  # the image size of the generator stage it judges
    stage: int | None = None  # that stage's index


@dataclass(frozen=True)
class MetricContext:
    device: Any = None  # where its networks run


@dataclass(frozen=True)
class NoContext:
    """Generators, losses and exporters are built from their params alone."""


CONTEXTS: dict[str, type] = {
    "dataset": DatasetContext,
    "text_encoder": TextContext,
    "matcher": TextContext,
    "conditioning": ConditioningContext,
    "fusion": FusionContext,
    "stage": StageContext,
    "generator": NoContext,
    "discriminator": DiscriminatorContext,
    "loss": NoContext,
    "metric": MetricContext,
    "exporter": NoContext,
}


def check_context(kind: str, name: str, context: dict[str, Any]) -> None:
    """Refuse a keyword that is not a field of ``kind``'s context dataclass."""
    known = [f.name for f in fields(CONTEXTS.get(kind, NoContext))]
    unknown = sorted(set(context) - set(known))
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listing = ", ".join(known) if known else "none"
    raise PluginError(
        f"{kind} '{name}': unknown build context key '{key}'; {hint}a {kind} is built with: "
        f"{listing} ({CONTEXTS.get(kind, NoContext).__name__})"
    )
