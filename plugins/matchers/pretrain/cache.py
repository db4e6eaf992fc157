"""The pretrained-matcher cache: keyed by everything that decides the trained weights.

The key hashes the matcher type and params, the dataset's description, the pretraining params,
the seed and the context (vocabulary size, the size and name of a pretrained tower's local
files, the resolved precision). An entry is a content-keyed artefact (``t2i_stages.artefacts``):
``matcher.safetensors`` + ``config.json``, and ``optimizer.pt`` while it is incomplete (a time
cap or a signal stopped it short of its steps, so that the next run continues it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from t2i_stages.plugin import Artefact, T2IError, save_state, write_config

from .params import PretrainParams

FORMAT_VERSION = 1
OPTIMIZER_FILE = "optimizer.pt"
WEIGHTS = "matcher.safetensors"


def canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def dataset_fingerprint(dataset: Any, probe: int = 16) -> dict[str, Any]:
    """A description of a dataset for the cache key when the caller has no recipe slot for it."""
    out: dict[str, Any] = {"class": type(dataset).__qualname__, "len": len(dataset)}
    params = getattr(dataset, "params", None)
    if isinstance(params, BaseModel):
        out["params"] = params.model_dump(mode="json")
    h = hashlib.sha256()
    captions = getattr(dataset, "captions", None)
    for i in range(min(probe, len(dataset))):
        if callable(captions):
            text = captions(i)
        else:
            text = dataset[i].get("caption", "")
        h.update(json.dumps(text, sort_keys=True, default=str).encode())
    out["captions_sha256"] = h.hexdigest()
    return out


def folder_fingerprint(folder: Path | None) -> dict[str, int] | None:
    if folder is None:
        return None
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def matcher_cache_payload(
    matcher_type: str,
    matcher_params: BaseModel | Mapping[str, Any],
    dataset: Any,
    params: PretrainParams,
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Everything that determines a pretrained matcher, as canonical JSON-able data; its
    ``artefacts.key_digest`` is the cache entry's name and identity."""
    mp = canonical(matcher_params)
    if isinstance(mp, dict):
        mp.pop("pretrain", None)  # given separately, minus the fields that do not train
    pp = canonical(params)
    for name in ("enabled", "weights", "log_every"):
        pp.pop(name, None)
    payload = {
        "format": FORMAT_VERSION,
        "matcher": {"type": matcher_type, "params": mp},
        "dataset": canonical(dataset),
        "pretrain": pp,
        "seed": int(seed),
        "extra": canonical(dict(extra or {})),
    }
    return payload


# ----------------------------------------------------------------------------- save / load


def save_matcher(
    matcher: Any, artefact: Artefact, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Publish ``matcher.safetensors`` (trainable weights + buffers), ``config.json`` and each
    of ``extra`` (file name -> state dict, saved with torch.save) as the artefact, whole."""
    with artefact.building() as tmp:
        save_state(tmp, matcher.trainable_state_dict(), WEIGHTS)
        for name, value in (extra or {}).items():
            if value is not None:
                torch.save(value, tmp / name)
        write_config(tmp, config)
    return artefact.path


def load_matcher_weights(matcher: Any, weights: str | Path) -> dict[str, Any]:
    """Load a ``matcher.safetensors`` into ``matcher``; returns the config.json beside it."""
    from safetensors.torch import load_file

    path = Path(weights)
    if not path.is_file():
        raise T2IError(f"matcher weights not found: {path}")
    state = load_file(str(path))
    expected = set(matcher.trainable_state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise T2IError(
            f"{path}: does not fit this matcher ({len(missing)} trained tensors missing, e.g. "
            f"{missing[0]}); was it trained with other matcher params?"
        )
    try:
        result = matcher.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise T2IError(
            f"{path}: does not fit this matcher: {first[-1] if first else exc}"
        ) from None
    if result.unexpected_keys:
        raise T2IError(
            f"{path}: unexpected tensors for this matcher, e.g. {result.unexpected_keys[0]}"
        )
    matcher.trained = True
    config_path = path.with_name("config.json")
    if config_path.is_file():
        return json.loads(config_path.read_text(encoding="utf-8"))
    return {}


def stopped_by_text(config: dict[str, Any]) -> str:
    by = config.get("stopped_by") or "max_minutes"
    return "at its max_minutes cap" if by == "max_minutes" else f"by {by}"


def resumable(folder: Path, config: dict[str, Any], key: str) -> dict[str, Any] | None:
    """What continuing a cached, incomplete pretraining needs, or None if it cannot be."""
    path = folder / OPTIMIZER_FILE
    if not path.is_file():
        return None
    try:
        optimizer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged file means retraining, never a crash
        return None
    return {
        "step": int(config.get("steps", 0)),
        "seconds": float(config.get("seconds", 0.0)),
        "optimizer": optimizer,
        "history": list(config.get("history", [])),
    }
