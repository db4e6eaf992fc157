"""The ``folder`` dataset: a user's own images with sidecar ``.txt`` captions or a JSONL manifest.

Each split (``train`` / ``test`` params, relative to ``root``) is either

- a folder: every image (``.jpg .jpeg .png .bmp .webp .gif .tif .tiff``, searched recursively)
  with a caption file of the same name and ``.txt`` suffix, one caption per line; or
- a ``.jsonl`` manifest: one JSON object per line, ``{"image": "path", "captions": ["...", ...]}``
  (``"caption": "..."`` also works), image paths relative to the manifest's folder.

With ``test: null`` and ``test_fraction > 0`` the test split is a deterministic share of the
train images (by a hash of their path), so a single folder is enough.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from t2i_stages.plugin import IMAGE_EXTS, T2IError

from .base import BadData, check_split
from .params import FolderParams
from .real import RealDataset, Record, clean_captions, read_caption_file


def index_folder(folder: Path, bad: BadData) -> list[Record]:
    records = []
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    for img in images:
        caps = read_caption_file(img.with_suffix(".txt"), bad)
        if caps is None:
            continue
        if not caps:
            bad.add(img.with_suffix(".txt"), "caption file has no captions")
            continue
        records.append(Record(str(img.relative_to(folder).with_suffix("")), img, caps))
    return records


def index_jsonl(manifest: Path, bad: BadData) -> list[Record]:
    try:
        raw = manifest.read_bytes()
    except OSError as exc:
        raise T2IError(f"{manifest}: cannot read the manifest ({exc.strerror or exc})") from None
    records = []
    for n, line in enumerate(raw.splitlines(), start=1):
        where = f"{manifest}:{n}"
        if not line.strip():
            continue
        try:
            entry: Any = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad.add(where, "manifest line is not UTF-8")
            continue
        except json.JSONDecodeError as exc:
            bad.add(where, f"manifest line is not JSON ({exc.msg})")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            bad.add(where, 'manifest line needs {"image": "...", "captions": [...]}')
            continue
        caps = entry.get("captions", entry.get("caption"))
        caps = [caps] if isinstance(caps, str) else caps
        caps = clean_captions(caps) if isinstance(caps, list) else []
        image = (manifest.parent / entry["image"]).resolve()
        if not caps:
            bad.add(where, f"no captions for {entry['image']}")
            continue
        records.append(Record(entry["image"], image, caps))
    return records


def index_split(root: Path, rel: str, bad: BadData) -> list[Record]:
    path = root / rel
    if rel.endswith(".jsonl"):
        if not path.is_file():
            raise T2IError(f"folder dataset: manifest {path} not found")
        return index_jsonl(path, bad)
    if not path.is_dir():
        raise T2IError(
            f"folder dataset: split folder {path} not found (set train/test to a folder or a .jsonl file)"
        )
    return index_folder(path, bad)


def _held_out(key: str, fraction: float) -> bool:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < fraction


def folder_factory(
    params: FolderParams, split: str = "train", resolutions: list[int] | None = None, **ctx: Any
) -> RealDataset:
    """Index the split (skipping bad samples) and return the dataset."""
    split = check_split(split)
    root = Path(params.root).expanduser()
    if not root.is_dir():
        raise T2IError(f"folder dataset: root {root} is not a folder")
    bad = BadData("folder", strict=params.strict)
    quiet = BadData("folder")  # captions of the other split feed the vocabulary only
    if params.test is None:
        if params.test_fraction <= 0:
            if split == "test":
                raise T2IError(
                    "folder dataset: no test split (set test to a folder / .jsonl, or test_fraction > 0)"
                )
        every = index_split(root, params.train, bad)
        want_test = split == "test"
        records = [r for r in every if _held_out(r.key, params.test_fraction) == want_test]
        all_captions = [c for r in every for c in r.captions]
    else:
        records = index_split(root, params.train if split == "train" else params.test, bad)
        other_rel = params.test if split == "train" else params.train
        try:
            other = index_split(root, other_rel, quiet)
        except T2IError:
            other = []
        all_captions = [c for r in records for c in r.captions] + [
            c for r in other for c in r.captions
        ]
    return RealDataset("folder", params, split, resolutions, records, all_captions, bad)
