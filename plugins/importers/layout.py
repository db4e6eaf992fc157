"""Where a state dict sits inside a released file, and reading a config off tensor shapes.

The references save state dicts plainly (``netG.pth``), nested (DF-GAN's
``{"model": {"netG": ...}}``, GR-GAN's ``{"netG": ..., "netD": [...]}``) and, when trained with
``nn.DataParallel``/DDP, with every key under ``module.``. ``find_part`` finds a network by its
anchor keys wherever it sits, so a file's layout needs no rule of its own. No torch here: only
key names and ``.shape`` are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import T2IError


@dataclass
class Part:
    """One network's tensors inside a file, its prefix removed (``"model.netG."``)."""

    file: str
    prefix: str  # "" for a plain state dict
    tensors: dict[str, Any]

    @property
    def source(self) -> str:
        """The file, and where in it: ``state_epoch_290.pth (model.netG)``."""
        return self.file + (f" ({self.prefix[:-1]})" if self.prefix else "")


def find_part(tensors: Mapping[str, Any], anchors: tuple[str, ...], source: str) -> Part | None:
    """The tensors under the first prefix at which every ``anchors`` key exists, or None."""
    first = anchors[0]
    for key in tensors:
        if key != first and not key.endswith("." + first):
            continue
        prefix = key[: len(key) - len(first)]
        if all(prefix + a in tensors for a in anchors[1:]):
            part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            return Part(source, prefix, part)
    return None


def indices(keys: Iterable[str], pattern: str) -> list[int]:
    """The sorted distinct integers the first group of ``pattern`` takes over ``keys``."""
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in keys if (m := rx.fullmatch(k)) is not None})


def shape(part: Part, key: str, rank: int) -> tuple[int, ...]:
    """``part``'s tensor ``key``'s shape, checked to have ``rank`` dimensions (one-line error)."""
    value = part.tensors.get(key)
    if value is None:
        raise T2IError(f"{part.source}: '{key}' is missing")
    got = tuple(int(n) for n in value.shape)
    if len(got) != rank:
        raise T2IError(f"{part.source}: '{key}' has shape {got}, expected {rank} dimensions")
    return got


def need(condition: bool, part: Part, message: str) -> None:
    """A one-line error naming the part's file when ``condition`` fails."""
    if not condition:
        raise T2IError(f"{part.source}: {message}")
