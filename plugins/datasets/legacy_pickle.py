"""Reading the reference repositories' legacy ``.pickle`` files safely.

``filenames.pickle`` (a list of str) and ``class_info.pickle`` (a list of ints) were written by
Python 2. Plain ``pickle.load`` would run any callable a crafted file names; this unpickler
refuses every global lookup (except the latin-1 ``_codecs.encode`` that protocol 2 uses for
bytes), so only plain containers and scalars (lists, dicts, tuples, str,
bytes, ints, floats, bools, None) can come out. Python 2 byte strings are decoded as UTF-8.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from t2i_stages.plugin import T2IError


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits no classes or functions at all."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes  # how protocol 2 spells a bytes object written by Python 3
        raise pickle.UnpicklingError(
            f"refusing to load '{module}.{name}' (only lists, dicts and strings are allowed)"
        )


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected use of _codecs.encode")
    return text.encode("latin1")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise pickle.UnpicklingError(f"unexpected {type(value).__name__} in a legacy pickle")


def safe_load_pickle(path: str | Path) -> Any:
    """Load a legacy pickle of plain data; anything else is a one-line T2IError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise T2IError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        value = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
        return _plain(value)
    except Exception as exc:
        raise T2IError(f"{path}: not a plain-data pickle: {exc}") from None


def load_key_list(path: str | Path) -> list[str]:
    """A ``filenames.pickle``: the list of image keys."""
    value = safe_load_pickle(path)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise T2IError(f"{path}: expected a list of file keys")
    return list(value)


def load_int_list(path: str | Path) -> list[int]:
    """A ``class_info.pickle``: one class number per key."""
    value = safe_load_pickle(path)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        raise T2IError(f"{path}: expected a list of class numbers")
    return [int(v) for v in value]
