"""The ``coco`` dataset: MS-COCO captions in the official layout or the AttnGAN / DM-GAN one.

- ``official``: ``annotations/captions_{train,val}<year>.json`` with the images in
  ``{train,val}<year>/`` (or ``images/{train,val}<year>/`` or ``images/``); test = val.
- ``attngan``: ``{train,test}/filenames.pickle`` (read by a restricted unpickler), captions in
  ``text/<key>.txt`` and images in ``images/<key>.jpg`` (or DF-GAN's ``images/{train,val}2014/``).

``auto`` picks ``attngan`` when ``train/filenames.pickle`` exists, else ``official``. COCO has no
classes, so ``class_id`` is -1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from t2i_stages.plugin import T2IError

from .base import BadData, check_split
from .legacy_pickle import load_key_list
from .params import CocoParams
from .real import RealDataset, Record, clean_captions, read_caption_file


def detect_layout(root: Path, layout: str) -> str:
    if layout != "auto":
        return layout
    if (root / "train" / "filenames.pickle").is_file():
        return "attngan"
    if (root / "annotations").is_dir():
        return "official"
    raise T2IError(
        f"coco: {root} has neither train/filenames.pickle nor annotations/ (set layout explicitly)"
    )


def _official(root: Path, year: str, part: str, bad: BadData) -> list[Record]:
    ann = root / "annotations" / f"captions_{part}{year}.json"
    try:
        data = json.loads(ann.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise T2IError(f"coco: annotation file {ann} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise T2IError(f"coco: {ann}: not a COCO caption annotation file ({exc})") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise T2IError(f"coco: {ann}: missing 'images' or 'annotations'")
    folder = next(
        (
            d
            for d in (root / f"{part}{year}", root / "images" / f"{part}{year}", root / "images")
            if d.is_dir()
        ),
        root / f"{part}{year}",
    )
    caps: dict[Any, list[str]] = defaultdict(list)
    for a in data["annotations"]:
        if isinstance(a, dict) and isinstance(a.get("caption"), str):
            caps[a.get("image_id")].append(a["caption"])
    records = []
    for im in sorted(data["images"], key=lambda d: str(d.get("file_name", ""))):
        name = im.get("file_name") if isinstance(im, dict) else None
        if not isinstance(name, str):
            bad.add(ann, "image entry without file_name")
            continue
        c = clean_captions(caps.get(im.get("id"), []))
        if not c:
            bad.add(folder / name, "no captions")
            continue
        records.append(Record(Path(name).stem, folder / name, c))
    return records


def _attngan(root: Path, split: str, bad: BadData) -> list[Record]:
    keys = load_key_list(root / split / "filenames.pickle")
    records = []
    for key in keys:
        candidates = [root / "images" / f"{key}.jpg"]
        candidates += [root / "images" / sub / f"{key}.jpg" for sub in ("train2014", "val2014")]
        image = next((c for c in candidates if c.is_file()), candidates[0])
        caps = read_caption_file(root / "text" / f"{key}.txt", bad)
        if caps is None:
            continue
        if not caps:
            bad.add(root / "text" / f"{key}.txt", "caption file has no captions")
            continue
        records.append(Record(key, image, caps))
    return records


def coco_records(params: CocoParams, split: str, bad: BadData) -> list[Record]:
    root = Path(params.root).expanduser()
    if not root.is_dir():
        raise T2IError(f"coco: root {root} is not a folder")
    layout = detect_layout(root, params.layout)
    if layout == "official":
        return _official(root, params.year, "train" if split == "train" else "val", bad)
    return _attngan(root, split, bad)


def coco_factory(
    params: CocoParams, split: str = "train", resolutions: list[int] | None = None, **ctx: Any
) -> RealDataset:
    """Index a COCO split (skipping bad samples) and return the dataset."""
    split = check_split(split)
    bad = BadData("coco", strict=params.strict)
    records = coco_records(params, split, bad)
    other_split = "test" if split == "train" else "train"
    try:
        other = coco_records(params, other_split, BadData("coco"))
    except T2IError:
        other = []
    captions = [c for r in records + other for c in r.captions[: params.captions_per_image]]
    return RealDataset("coco", params, split, resolutions, records, captions, bad)
