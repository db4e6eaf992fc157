"""Content-keyed artefacts: folders made once from what decides them, and only ever seen whole.

Slow results that are a pure function of known content (a rendered shapes split, the shapes
oracle, a pretrained matcher) live in ``assets.cache_dir(kind, root=root) / <hash of key>``, the
key being the JSON-able content that decides them: another key never finds the folder, the same
key finds it from any process. A folder is built under a temporary name, a marker holding the
key is written last and a rename publishes it atomically, so a failed or killed build never
leaves a half-made artefact that ``ready()`` accepts. A file lock serialises builders across
processes (DDP ranks, xdist workers). What a builder must remember beyond "published" (e.g. a
pretraining cached as resumable, not finished) goes in its own ``config.json`` (``write_config``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .assets import cache_dir
from .errors import T2IError

MARKER = "artefact.json"
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
FORMAT = "t2i-stages-artefact/1"
_held = threading.local()  # lock files this thread holds, so that lock() nests
PathLike = str | os.PathLike[str]


def key_digest(key: Any) -> str:
    """sha256 of the key's canonical JSON, as the matcher cache hashes its payload already."""
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class Artefact:
    """One content-keyed folder: ``cache_dir(kind, root=root) / key_digest(key)[:digits]``."""

    def __init__(self, kind: str, key: Any, *, root: PathLike | None = None, digits: int = 24):
        self.kind, self.key, self.digest = kind, key, key_digest(key)
        self.path = cache_dir(*kind.split("/"), root=root) / self.digest[:digits]

    def ready(self) -> bool:
        """Published whole for this key: its marker exists and names this key's hash."""
        marker = read_json(self.path / MARKER)
        return isinstance(marker, dict) and marker.get("sha256") == self.digest

    def config(self) -> dict[str, Any] | None:
        """The builder's ``config.json`` of the published artefact (None if not ready or none)."""
        return read_json(self.path / CONFIG) if self.ready() else None

    def _parent(self) -> Path:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create cache folder {self.path.parent}: {exc} (set $T2I_STAGES_HOME)"
            raise T2IError(msg) from None
        return self.path.parent

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes (``flock`` on ``<name>.lock`` beside the folder); nests
        within a thread, so a holder can call ``building()`` and ``ensure()`` inside it."""
        held: set[str] = _held.__dict__.setdefault("paths", set())
        path = self._parent() / f"{self.path.name}.lock"
        if str(path) in held:
            yield
            return
        with open(path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held.add(str(path))
            try:
                yield
            finally:
                held.discard(str(path))
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        """A new temporary folder to build in: published on a clean exit (replacing an earlier
        version whole, under the lock), removed if the block raises. A builder need not hold the
        lock while it works; concurrent ones each publish a whole folder, the last one stays."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self._parent()))
        try:
            yield tmp
            marker = {"format": FORMAT, "kind": self.kind, "sha256": self.digest, "key": self.key}
            (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")  # last
            old = self.path.with_name(f".{self.path.name}.old-{uuid.uuid4().hex}")
            with self.lock():
                if self.path.exists():
                    os.replace(self.path, old)
                os.replace(tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already once published

    def ensure(self, build: Callable[[Path], None]) -> Path:
        """The folder, made once by ``build(tmp)`` under the lock unless it is ready."""
        if not self.ready():
            with self.lock():
                if not self.ready():
                    with self.building() as tmp:
                        build(tmp)
        return self.path


def read_json(path: PathLike) -> Any | None:
    """A JSON file's content, or None if it is missing or unreadable (a cache is never trusted)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_config(folder: PathLike, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` into a folder being built (what the builder wants to remember)."""
    path = Path(folder) / CONFIG
    path.write_text(json.dumps(dict(config), indent=2, sort_keys=True), encoding="utf-8")
    return path


def save_state(
    folder: PathLike, state: Mapping[str, torch.Tensor], name: str = WEIGHTS, **metadata: str
) -> Path:
    """Save tensors as safetensors: contiguous CPU copies, as safetensors refuses shared views."""
    from safetensors.torch import save_file

    path = Path(folder) / name
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata=metadata or None)
    return path


def load_state(folder: PathLike, name: str = WEIGHTS) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file in an artefact folder (on the CPU)."""
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / name))
