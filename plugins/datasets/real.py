"""What the loaders of real image-caption data share (coco, cub, folder).

A loader turns its on-disk layout into a list of :class:`Record` (image path, captions, class id,
optional bounding box); :class:`RealDataset` does the rest the same way for every layout:

- bad data (missing / empty / undecodable image, zero-size image, no or too few captions,
  non-UTF-8 caption file, a manifest line that is not JSON) is found while indexing and skipped
  with one ``DataWarning`` giving the count and the first paths; with ``strict: true`` the first
  problem raises a ``T2IError`` naming the file. An image that only fails later, while training,
  is replaced by the next good one (also reported), so an epoch never crashes;
- images follow architectures.md §8.2: optional bounding-box crop (CUB), shorter side resized
  to ``crop_scale`` x the largest resolution, a random crop and horizontal flip in the train split
  (centre crop, no flip in test unless asked), then each smaller resolution resized from the crop;
- the word vocabulary is built over the train and test captions (sorted by frequency, so it is
  reproducible), unless ``vocab_path`` names a saved one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from t2i_stages.plugin import (
    T2IError,
    WordVocab,
)

from .base import (
    BadData,
    BadDataError,
    CaptionedDataset,
    DataWarning,
    check_resolutions,
    check_split,
    make_tokenizer,
    to_tensor_image,
)
from .params import RealParams


@dataclass
class Record:
    """One image and its captions."""

    key: str
    image: Path
    captions: list[str]
    class_id: int = -1
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h (pixels)


def read_caption_file(path: Path, bad: BadData) -> list[str] | None:
    """Lines of a caption file (empty lines dropped); None (and a bad-data entry) if unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        bad.add(path, "caption file missing")
        return None
    except OSError as exc:
        bad.add(path, f"caption file unreadable ({exc.strerror or exc})")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        bad.add(path, "caption file is not UTF-8")
        return None
    return clean_captions(text.splitlines())


def clean_captions(lines: list[Any]) -> list[str]:
    out = []
    for line in lines:
        if not isinstance(line, str):
            continue
        line = line.replace("\ufffd\ufffd", " ").strip()
        if line:
            out.append(line)
    return out


def check_image(path: Path, mode: str) -> str | None:
    """Why an image file is unusable, or None."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "image file missing"
    except OSError as exc:
        return f"image unreadable ({exc.strerror or exc})"
    if size == 0:
        return "image file is empty (0 bytes)"
    if mode == "none":
        return None
    try:
        with Image.open(path) as img:
            w, h = img.size
            if mode == "full":
                img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"image cannot be decoded ({type(exc).__name__}: {exc})"
    if w < 1 or h < 1:
        return f"zero-size image ({w}x{h})"
    return None


def bbox_crop(img: Image.Image, bbox: tuple[float, float, float, float]) -> Image.Image:
    """The CUB crop: a square of half-size 0.75 x max(w, h) around the box centre, clamped."""
    x, y, w, h = bbox
    r = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    x1, y1 = max(0, cx - r), max(0, cy - r)
    x2, y2 = min(img.width, cx + r), min(img.height, cy + r)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return img
    return img.crop((x1, y1, x2, y2))


def multiscale(
    img: Image.Image,
    resolutions: list[int],
    rng: np.random.Generator,
    crop_scale: float,
    random: bool,
    flip: bool,
) -> list[torch.Tensor]:
    """Resize / crop / flip to the largest resolution, then resize the crop to each smaller one."""
    top = resolutions[-1]
    base = max(top, int(top * crop_scale))
    w, h = img.size
    s = base / min(w, h)
    nw, nh = max(base, round(w * s)), max(base, round(h * s))
    img = img.resize((nw, nh), Image.BILINEAR)
    if random:
        x0 = int(rng.integers(0, nw - top + 1))
        y0 = int(rng.integers(0, nh - top + 1))
    else:
        x0, y0 = (nw - top) // 2, (nh - top) // 2
    img = img.crop((x0, y0, x0 + top, y0 + top))
    if flip and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = []
    for r in resolutions:
        im = img if r == top else img.resize((r, r), Image.BILINEAR)
        out.append(to_tensor_image(np.asarray(im, dtype=np.uint8)))
    return out


class RealDataset(CaptionedDataset):
    """A split of real image-caption data, indexed into :class:`Record` s by a loader."""

    def __init__(
        self,
        name: str,
        params: RealParams,
        split: str,
        resolutions: list[int] | None,
        records: list[Record],
        vocab_captions: list[str],
        bad: BadData,
    ):
        split = check_split(split)
        res = check_resolutions(resolutions, params.resolutions)
        self.name = name
        self.params = params
        indexing_problems = len(bad)  # samples the loader already dropped while indexing
        kept = []
        for rec in records:
            caps = (
                rec.captions[: params.captions_per_image]
                if params.captions_per_image
                else rec.captions
            )
            if len(caps) < params.min_captions:
                bad.add(
                    rec.image,
                    f"{len(caps)} captions, fewer than min_captions={params.min_captions}",
                )
                continue
            problem = check_image(rec.image, params.check_images)
            if problem:
                bad.add(rec.image, problem)
                continue
            rec.captions = caps
            kept.append(rec)
        bad.report(total=len(records) + indexing_problems)
        if not kept:
            raise T2IError(f"{name}: no usable images in the {split} split under {params.root}")
        self.records = kept
        self.skipped = len(bad)
        self.strict = params.strict
        self._late_failures: list[str] = []
        vocab = make_tokenizer(
            params.tokenizer,
            params.vocab_path,
            lambda: WordVocab.build(vocab_captions or [c for r in kept for c in r.captions]),
        )
        super().__init__(
            split=split,
            resolutions=res,
            max_words=params.max_words,
            seed=params.seed,
            vocab=vocab,
            word_subsample=params.word_subsample,
        )

    def __len__(self) -> int:
        return len(self.records)

    def captions(self, i: int) -> list[str]:
        return list(self.records[i].captions)

    def class_id(self, i: int, caption_index: int) -> int:
        return int(self.records[i].class_id)

    def key(self, i: int) -> str:
        return self.records[i].key

    def load_images(self, i: int, rng: np.random.Generator) -> list[torch.Tensor]:
        rec = self.records[i]
        with Image.open(rec.image) as raw:
            img = raw.convert("RGB")
        if img.width < 1 or img.height < 1:
            raise OSError("zero-size image")
        if rec.bbox is not None:
            img = bbox_crop(img, rec.bbox)
        train_like = self.split == "train" or self.params.augment_test
        return multiscale(
            img,
            self.resolutions,
            rng,
            self.params.crop_scale,
            random=self.params.random_crop and train_like,
            flip=self.params.flip and train_like,
        )

    def sample(self, i: int, caption_index: int | None = None) -> dict[str, Any]:
        """Like the base, but an image failing now is replaced by the next good one (never a crash)."""
        n = len(self)
        for step in range(min(n, 16)):
            j = (i + step) % n if -n <= i < n else i
            try:
                return super().sample(j, caption_index if step == 0 else None)
            except IndexError:
                raise
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                path = self.records[j].image
                if self.strict:
                    raise BadDataError(
                        f"{self.name}: {path}: image cannot be decoded ({exc})"
                    ) from None
                self._late_failures.append(str(path))
                if len(self._late_failures) == 1 or len(self._late_failures) % 100 == 0:
                    warnings.warn(
                        f"{self.name}: {len(self._late_failures)} images failed while loading and were replaced "
                        f"by the next one (first: {self._late_failures[0]})",
                        DataWarning,
                        stacklevel=2,
                    )
        raise T2IError(
            f"{self.name}: 16 images in a row failed to load near index {i} (first: {self._late_failures[0]})"
        )
