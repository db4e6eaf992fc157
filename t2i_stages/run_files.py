"""Reading a run folder's files: one reader, so a damaged file is one line that names it.

A run folder outlives the code that wrote it and can be truncated, hand-edited or replaced by
anything; every command that reads one (``eval``, ``export``, ``generate``, ``--resume``, the
report, the ablation table) goes through these readers instead of a bare ``json.loads``. The
checkpoint folders have their own integrity check (``checkpoint.verify_checkpoint``) and the
vocabulary its own reader (``text.WordVocab.load``); both already name the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import T2IError


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_json(path: str | Path, expect: type | None = dict) -> Any:
    """A JSON file of a run folder (of type ``expect`` when given), or a one-line T2IError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise T2IError(f"{path}: missing from the run folder") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise T2IError(
            f"{path}: cannot be read as JSON ({_first_line(exc)}); the run folder is damaged"
        ) from None
    if expect is not None and not isinstance(data, expect):
        raise T2IError(
            f"{path}: holds a {type(data).__name__}, not a {expect.__name__}; the run folder is damaged"
        )
    return data


def read_yaml(path: str | Path) -> Any:
    """A YAML file of a run folder (safe loader), or a one-line T2IError naming it."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise T2IError(f"{path}: missing from the run folder") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise T2IError(
            f"{path}: cannot be read as YAML ({_first_line(exc)}); the run folder is damaged"
        ) from None
