r"""Key maps: a reference checkpoint's names -> the framework's, and the fit check.

A ``KeyMap`` is an ordered list of regex rules; the first that matches a reference key renames
it (``re.sub`` templates, so ``r"h_net(\d)\.(.*)"`` -> ``r"stages.\1.\2"`` works). Keys a rule
maps to ``None`` are dropped on purpose (an unused head, say) and listed in the import's record.
``fit_tensors`` compares the mapped tensors with the component the recipe built and raises one
line naming the file, the release it expected and the first few keys that do not fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import T2IError

SHOWN = 4  # keys named in a fit error


class KeyMapError(T2IError):
    """Tensors that do not fit the component they are meant for."""


@dataclass
class KeyMap:
    """Ordered ``(reference pattern, our template or None)`` rules; unmatched keys are errors."""

    rules: list[tuple[str, str | None]]
    _compiled: list[tuple[re.Pattern[str], str | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._compiled = [(re.compile(p), t) for p, t in self.rules]

    def rename(self, key: str) -> str | None:
        """Our name for ``key``; None when a rule drops it; KeyError when no rule matches."""
        for pattern, template in self._compiled:
            if pattern.fullmatch(key):
                return None if template is None else pattern.sub(template, key)
        raise KeyError(key)

    def apply(
        self, tensors: dict[str, Any], source: str, release: str
    ) -> tuple[dict[str, Any], list[str]]:
        """(our state dict, the dropped reference keys); a key no rule knows is a one-line
        KeyMapError naming ``source`` and ``release``."""
        out: dict[str, Any] = {}
        dropped: list[str] = []
        unknown: list[str] = []
        for key, value in tensors.items():
            try:
                ours = self.rename(key)
            except KeyError:
                unknown.append(key)
                continue
            if ours is None:
                dropped.append(key)
            elif ours in out:
                raise KeyMapError(f"{source}: keys map twice onto '{ours}' (key map bug)")
            else:
                out[ours] = value
        if unknown:
            raise KeyMapError(
                f"{source}: {len(unknown)} key(s) are not in {release}: {_listing(unknown)}; "
                "is it that release's file?"
            )
        return out, dropped


def _listing(keys: list[str]) -> str:
    shown = ", ".join(f"'{k}'" for k in keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def fit_tensors(
    tensors: dict[str, Any],
    expected: dict[str, Any],
    source: str,
    release: str,
    optional: tuple[str, ...] = ("num_batches_tracked",),
) -> dict[str, Any]:
    """``tensors`` completed and checked against ``expected`` (a built module's state dict).

    A key whose last part is in ``optional`` may be missing (torch 0.4 files have no
    ``num_batches_tracked``): the built module's value is kept. Anything else missing, extra or
    of another shape is one KeyMapError line naming ``source`` and the ``release`` expected.
    """
    problems: list[str] = []
    out = dict(tensors)
    for key, value in expected.items():
        if key not in tensors:
            if key.rsplit(".", 1)[-1] in optional:
                out[key] = value
            else:
                problems.append(f"'{key}' is missing")
        elif tuple(tensors[key].shape) != tuple(value.shape):
            got, want = tuple(tensors[key].shape), tuple(value.shape)
            problems.append(f"'{key}' has shape {got} where {want} is expected")
    problems += [f"'{k}' is not expected" for k in tensors if k not in expected]
    if problems:
        more = f" and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise KeyMapError(f"{source}: does not fit {release}: {'; '.join(problems[:SHOWN])}{more}")
    return out
