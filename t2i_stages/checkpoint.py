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
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import T2IError
from .hashing import sha256_file as _sha256

MANIFEST = "manifest.json"
PREFIX = "step_"
FORMAT = 1
# what every checkpoint holds besides its component files (loading reads nothing unlisted)
REQUIRED = ("optimizers.pt", "rng.json", "rng.safetensors", "state.json")
_STEP_DIR = re.compile(rf"^{PREFIX}(\d+)$")
_TMP_DIR = re.compile(rf"^\.tmp-{PREFIX}\d+-(\d+)$")
_PLAIN_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class CheckpointError(T2IError):
    """A checkpoint is missing, truncated or tampered with."""


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
    remove_stale_temporaries(root)
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
    manifest = {"format": FORMAT, "step": step, "files": {p.name: _sha256(p) for p in files}}
    manifest["manifest_sha256"] = manifest_digest(manifest)
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


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's own content, so a flipped byte in it is caught as well."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete half-written ``.tmp-step_*`` folders other processes left (killed mid-write)."""
    removed = []
    if not root.is_dir():
        return removed
    for p in root.iterdir():
        m = _TMP_DIR.match(p.name)
        if m and int(m.group(1)) != os.getpid():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def list_checkpoints(root: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first (temporary folders are ignored)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def verify_checkpoint(path: Path) -> dict[str, str]:
    """Check every file against the manifest; raise CheckpointError naming the first bad one.

    Returns the manifest's ``{file name: sha256}``; only those files are ever loaded.
    """
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        ok = isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
        if not ok:
            raise TypeError("'files' is not a mapping of names to digests")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest_path}: missing or unreadable manifest ({exc})") from None
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise CheckpointError(
            f"{manifest_path}: the manifest's own SHA-256 does not match (altered)"
        )
    for name in files:
        if not _PLAIN_FILE.match(name) or name == MANIFEST:
            raise CheckpointError(f"{manifest_path}: '{name}' is not a plain checkpoint file name")
    for name in REQUIRED:
        if name not in files:
            raise CheckpointError(f"{manifest_path}: does not list {name}")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: file listed in the manifest is missing")
        if _sha256(f) != digest:
            raise CheckpointError(
                f"{f}: SHA-256 does not match the manifest (truncated or altered)"
            )
    return files


def load_checkpoint(path: Path) -> Checkpoint:
    """Verify, then load a checkpoint folder without running any code it could carry.

    Tensors come from safetensors, the optimizer states through ``torch.load(weights_only=True)``
    (which refuses any pickled callable), everything else from JSON.
    """
    files = verify_checkpoint(path)
    components = {}
    try:
        for name in sorted(files):
            if name.endswith(".safetensors") and name != "rng.safetensors":
                components[name[: -len(".safetensors")]] = load_file(str(path / name))
        rng = _rng_from_files(path)
        state = json.loads((path / "state.json").read_text())
        int(state["step"])
    except Exception as exc:
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    try:
        optimizers = torch.load(path / "optimizers.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path / 'optimizers.pt'}: refused to load (only tensors and plain data are "
            f"allowed): {first}"
        ) from None
    if not isinstance(optimizers, dict):
        raise CheckpointError(f"{path / 'optimizers.pt'}: expected a mapping of optimizer states")
    return Checkpoint(path, components, optimizers, rng, state)


def latest_good_checkpoint(root: Path, warn=print) -> Checkpoint | None:
    """The newest checkpoint that verifies; a bad one is reported by name and skipped."""
    for path in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            warn(f"warning: skipping checkpoint {path.name}: {exc}; trying the previous one")
    return None


def estimate_checkpoint_bytes(
    components: dict[str, dict[str, torch.Tensor]], trainable_numel: int = 0
) -> int:
    """Bytes a checkpoint will take: every component tensor, plus Adam's two fp32 moments.

    ``trainable_numel`` counts the optimised parameters; 64 KiB covers the JSON files.
    """
    tensors = sum(t.numel() * t.element_size() for sd in components.values() for t in sd.values())
    return tensors + 2 * 4 * trainable_numel + (64 << 10)


def check_checkpoint_dir(root: Path, needed_bytes: int, margin: float = 1.1) -> None:
    """Fail before training when ``root`` is not writable or cannot hold one more checkpoint.

    A checkpoint is written beside the old ones before they are pruned, so one checkpoint's
    size (with a margin) must be free.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(
            f"{root}: the output folder is not writable ({exc.strerror or exc}); "
            "choose another --out"
        ) from None
    free = shutil.disk_usage(root).free
    if free < needed_bytes * margin:
        raise CheckpointError(
            f"{root}: {free / 2**20:.1f} MiB free, but a checkpoint needs about "
            f"{needed_bytes * margin / 2**20:.1f} MiB; free some space or choose another --out"
        )
