"""Reading a released weights file without running anything in it.

The papers' files are ``torch.save`` pickles (the legacy non-zip format of torch 0.4, or the
zip format), of a state dict or of a dict of them (DF-GAN's ``{"model": {"netG": ...}}``).
They are read with ``torch.load(weights_only=True)`` only: a file whose pickle names anything
but tensors and plain containers is refused before any of it runs. ``.safetensors`` files are
read as they are. Other files (``captions.pickle``) are passed to the importer unread.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import T2IError

WEIGHT_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin", ".safetensors")


class LegacyFileError(T2IError):
    """A released file that cannot be read, or that holds more than weights."""


@dataclass
class ReleaseFile:
    """One file given to ``import``: its weights (``content``), or None for a file that is
    not a weights file (the importer reads it, e.g. a vocabulary pickle)."""

    path: Path
    content: Any = None
    tensors: dict[str, Any] = field(default_factory=dict)  # flattened: "netG.fc.weight" -> T

    @property
    def name(self) -> str:
        return self.path.name

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape, the file's fingerprint."""
        return {k: tuple(v.shape) for k, v in self.tensors.items()}

    def part(self, prefix: str) -> dict[str, Any]:
        """The tensors under ``prefix.`` with the prefix removed (``"model.netG"``)."""
        start = prefix + "."
        return {k[len(start) :]: v for k, v in self.tensors.items() if k.startswith(start)}


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    import torch

    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))


def _reason(exc: Exception) -> str:
    """The line of torch's message that says what is wrong (it wraps it in advice)."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error: ?(.*)", text)
    if found is not None:
        tail = found[1].strip() or text[found.end() :].strip().splitlines()[0]
        return tail[:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def read_release_file(path: str | Path) -> ReleaseFile:
    """Read one released file; weights files must hold tensors and plain containers only."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise LegacyFileError(f"{path}: no such file")
    if path.suffix not in WEIGHT_SUFFIXES:
        return ReleaseFile(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            content: Any = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a damaged file is a user error
            raise LegacyFileError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            if found is None:
                raise LegacyFileError(
                    f"{path}: not a readable torch file ({_reason(exc)})"
                ) from None
            raise LegacyFileError(
                f"{path}: refused: it holds pickled objects other than weights ('{found[1]}'), "
                "and only weights are read (nothing in it ran)"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise LegacyFileError(f"{path}: not a readable torch file ({_reason(exc)})") from None
    tensors = dict(_flatten(content))
    if not tensors:
        raise LegacyFileError(f"{path}: holds no tensors")
    return ReleaseFile(path, content, tensors)
