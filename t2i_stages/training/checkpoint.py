"""Checkpoints as folders: one safetensors file per component, written atomically.

A checkpoint ``step_000123/`` holds ``<component>.safetensors`` files, ``optimizers.pt`` (loaded
with ``weights_only=True``), the RNG states, ``state.json`` (step and data position), the resolved
recipe and ``manifest.json`` with a SHA-256 per file. It is written under a temporary name,
fsynced and renamed, so a crash mid-write never leaves a half checkpoint under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import T2IError

MANIFEST = "manifest.json"
PREFIX = "step_"


class CheckpointError(T2IError):
    """A checkpoint is missing, truncated or tampered with."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some filesystems refuse directory fsync; the rename is still atomic
        pass


def state_dict_to_safetensors(sd: dict[str, torch.Tensor], path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}
    save_file(tensors, str(path))


def _rng_to_files(rng: dict, folder: Path) -> None:
    tensors = {"torch": rng["torch"]}
    for i, s in enumerate(rng.get("cuda", [])):
        tensors[f"cuda.{i}"] = s
    for name, s in rng.get("generators", {}).items():
        tensors[f"gen.{name}"] = s
    save_file(tensors, str(folder / "rng.safetensors"))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    plain = {
        "python": [rng["python"][0], list(rng["python"][1]), rng["python"][2]],
        "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
    }
    (folder / "rng.json").write_text(json.dumps(plain))


def _rng_from_files(folder: Path) -> dict:
    tensors = load_file(str(folder / "rng.safetensors"))
    plain = json.loads((folder / "rng.json").read_text())
    py = plain["python"]
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    state = {
        "python": (py[0], tuple(py[1]), py[2]),
        "numpy": (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached),
        "torch": tensors["torch"],
        "generators": {k[4:]: v for k, v in tensors.items() if k.startswith("gen.")},
    }
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda:
        state["cuda"] = cuda
    return state


@dataclass
class Checkpoint:
    """What a loaded checkpoint holds."""

    path: Path
    components: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, Any]
    rng: dict
    state: dict


def save_checkpoint(
    root: Path,
    step: int,
    components: dict[str, dict[str, torch.Tensor]],
    optimizers: dict[str, Any],
    rng: dict,
    state: dict,
    recipe_yaml: str,
    keep: int = 3,
) -> Path:
    """Write ``root/step_XXXXXX`` atomically and keep only the newest ``keep`` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, sd in components.items():
        state_dict_to_safetensors(sd, tmp / f"{name}.safetensors")
    torch.save(optimizers, tmp / "optimizers.pt")
    _rng_to_files(rng, tmp)
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
    (tmp / "recipe.resolved.yaml").write_text(recipe_yaml)
    files = sorted(p for p in tmp.iterdir() if p.is_file())
    for p in files:
        _fsync_file(p)
    manifest = {"step": step, "files": {p.name: _sha256(p) for p in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    _fsync_file(tmp / MANIFEST)
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first (temporary folders are ignored)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def verify_checkpoint(path: Path) -> None:
    """Raise CheckpointError naming the first file that is missing or whose hash differs."""
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest_path}: missing or unreadable manifest ({exc})") from None
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: file listed in the manifest is missing")
        if _sha256(f) != digest:
            raise CheckpointError(
                f"{f}: SHA-256 does not match the manifest (truncated or altered)"
            )


def load_checkpoint(path: Path) -> Checkpoint:
    verify_checkpoint(path)
    components = {}
    for f in sorted(path.glob("*.safetensors")):
        if f.stem != "rng":
            components[f.stem] = load_file(str(f))
    try:
        optimizers = torch.load(path / "optimizers.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path / 'optimizers.pt'}: refused to load: {exc}") from None
    state = json.loads((path / "state.json").read_text())
    return Checkpoint(path, components, optimizers, _rng_from_files(path), state)


def latest_good_checkpoint(root: Path, warn=print) -> Checkpoint | None:
    """The newest checkpoint that verifies; a bad one is reported by name and skipped."""
    for path in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            warn(f"warning: skipping checkpoint {path.name}: {exc}")
    return None
