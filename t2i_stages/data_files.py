"""What every reader of a user's image files shares: which suffixes are images, and how bad
files are reported.

A reader (the real-data loaders in ``plugins/datasets/``, ``t2i-stages eval --images``) collects
each unusable file in a :class:`BadData` and reports them all in one :class:`DataWarning` (the
count and the first names); in strict mode the first one raises :class:`BadDataError` naming
the file. Torch-free.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import T2IError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
"""The image files the readers look at (lower-case suffixes)."""


class DataWarning(UserWarning):
    """Bad samples were skipped (one warning per dataset, with a count and the first paths)."""


class BadDataError(T2IError):
    """A sample is unusable and the dataset is in strict mode."""


@dataclass
class BadData:
    """Collects skipped samples; reports them in one warning, or raises at once in strict mode.

    ``hint`` ends the strict-mode error: how to skip bad samples instead.
    """

    dataset: str
    strict: bool = False
    show: int = 5
    problems: list[tuple[str, str]] = field(default_factory=list)
    hint: str = "set strict: false to skip bad samples"

    def add(self, path: str | Path, reason: str) -> None:
        if self.strict:
            raise BadDataError(f"{self.dataset}: {path}: {reason} (strict mode; {self.hint})")
        self.problems.append((str(path), reason))

    def summary(self) -> str:
        """The first ``show`` problems, ``path: reason; ...``, and how many more."""
        first = "; ".join(f"{p}: {r}" for p, r in self.problems[: self.show])
        more = len(self.problems) - self.show
        return first + (f" (and {more} more)" if more > 0 else "")

    def report(self, total: int | None = None) -> None:
        if not self.problems:
            return
        of = f" of {total}" if total is not None else ""
        warnings.warn(
            f"{self.dataset}: skipped {len(self.problems)}{of} samples with bad data: "
            f"{self.summary()}",
            DataWarning,
            stacklevel=3,
        )

    def __len__(self) -> int:
        return len(self.problems)
