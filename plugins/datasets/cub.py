"""The ``cub`` dataset: CUB-200-2011 birds in the AttnGAN / DM-GAN layout, with the bbox crop.

``root`` holds ``{train,test}/filenames.pickle`` (keys like ``001.Black_footed_Albatross/
Black_Footed_Albatross_0046_18``), optional ``{train,test}/class_info.pickle``, ``text/<key>.txt``
(10 captions each) and ``CUB_200_2011/images/<key>.jpg`` with ``CUB_200_2011/images.txt`` and
``bounding_boxes.txt``. Each image is cropped to a square of half-size 0.75 x max(w, h) around
its bird before the usual resize / crop / flip. ``class_id`` is the class number from
``class_info.pickle``, or the number prefix of the key's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2i_stages.plugin import T2IError

from .base import BadData, check_split
from .legacy_pickle import load_int_list, load_key_list
from .params import CubParams
from .real import RealDataset, Record, read_caption_file


def read_bboxes(cub: Path) -> dict[str, tuple[float, float, float, float]]:
    """key (``images.txt`` path without .jpg) -> (x, y, w, h)."""
    images, boxes = cub / "images.txt", cub / "bounding_boxes.txt"
    if not images.is_file() or not boxes.is_file():
        raise T2IError(f"cub: bbox_crop needs {images} and {boxes} (or set bbox_crop: false)")
    try:
        names = dict(
            line.split(maxsplit=1)
            for line in images.read_text(encoding="utf-8").splitlines()
            if line.strip()
        )
        out = {}
        for line in boxes.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            idx, *xywh = line.split()
            out[names[idx].strip().rsplit(".", 1)[0]] = tuple(float(v) for v in xywh[:4])
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise T2IError(f"cub: cannot parse {images} / {boxes}: {exc}") from None
    return out


def _class_from_key(key: str) -> int:
    head = key.split("/", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else -1


def cub_records(params: CubParams, split: str, bad: BadData, with_boxes: bool) -> list[Record]:
    root = Path(params.root).expanduser()
    if not root.is_dir():
        raise T2IError(f"cub: root {root} is not a folder")
    keys = load_key_list(root / split / "filenames.pickle")
    info = root / split / "class_info.pickle"
    classes = load_int_list(info) if info.is_file() else [_class_from_key(k) for k in keys]
    if len(classes) != len(keys):
        raise T2IError(f"cub: {info} has {len(classes)} entries for {len(keys)} keys")
    boxes = read_bboxes(root / "CUB_200_2011") if (with_boxes and params.bbox_crop) else {}
    records = []
    for key, cls in zip(keys, classes, strict=True):
        caps = read_caption_file(root / "text" / f"{key}.txt", bad)
        if caps is None:
            continue
        image = root / "CUB_200_2011" / "images" / f"{key}.jpg"
        records.append(Record(key, image, caps, class_id=int(cls), bbox=boxes.get(key)))
    return records


def cub_factory(
    params: CubParams, split: str = "train", resolutions: list[int] | None = None, **ctx: Any
) -> RealDataset:
    """Index a CUB split (skipping bad samples) and return the dataset."""
    split = check_split(split)
    bad = BadData("cub", strict=params.strict)
    records = cub_records(params, split, bad, with_boxes=True)
    try:
        other = cub_records(
            params, "test" if split == "train" else "train", BadData("cub"), with_boxes=False
        )
    except T2IError:
        other = []
    captions = [c for r in records + other for c in r.captions[: params.captions_per_image]]
    return RealDataset("cub", params, split, resolutions, records, captions, bad)
