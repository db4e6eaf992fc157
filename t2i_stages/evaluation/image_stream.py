"""Given images as an evaluation stream (``t2i-stages eval --images``): each image is paired with
a test image of the reference split, and the batches come out as generated ones do.

Each image is paired, in this order of preference, by

- its ``index`` (from the captions file): that test image;
- its caption: the first test image that has this caption (compared as the tokenizer's
  lower-case words) and is not taken yet, so a caption that several test images share spreads
  over them; when all are taken, the first;
- neither: the first test image no other image is paired with, in split order (once all are
  taken, image k and test image k mod the split's size). With no caption found at all this is
  the reference set a run's evaluation uses (the first N test images); it keeps the reference
  images distinct as far as the split allows.

The paired test image is the image's real counterpart (the reference set of FD/KID, the real
images of CMD and of the metrics' real-image ceilings) and gives its class id (R-precision's
negatives) and its index (CMD's "all captions"). Ground-truth attributes (attribute accuracy)
come from it only where the image's caption is one of that test image's own captions; if any
image lacks them, no batch carries attributes. The caption given with the image is what the
text side reads, tokenised with the reference dataset's vocabulary (its first ``max_words``
words, without subsampling).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import T2IError
from ..text import tokenize
from .images import RESIZER, ImageEntry, ImageFolder, load_image
from .samples import EvalBatch, to_uint8

BY = ("index", "caption", "order")


def caption_key(caption: str) -> str:
    """What two captions must share to be the same caption: their lower-case words."""
    return " ".join(tokenize(caption))


@dataclass
class Pairing:
    """Per image: its test image, which of that image's captions it has (None: none of them)
    and how it was paired (one of ``BY``)."""

    test_index: list[int]
    caption_index: list[int | None]
    how: list[str]

    @property
    def has_truth(self) -> bool:
        """Whether every image has one of its test image's own captions (ground truth)."""
        return all(c is not None for c in self.caption_index)

    def counts(self) -> dict[str, int]:
        found = Counter(self.how)
        return {f"by_{b}": found.get(b, 0) for b in BY}


def _caption_table(dataset: Any) -> dict[str, list[tuple[int, int]]]:
    table: dict[str, list[tuple[int, int]]] = {}
    if not callable(getattr(dataset, "captions", None)):
        return table
    for i in range(len(dataset)):
        for ci, caption in enumerate(dataset.captions(i)):
            table.setdefault(caption_key(caption), []).append((i, ci))
    return table


def pair_with_split(entries: list[ImageEntry], dataset: Any) -> Pairing:
    """Pair each image with a test image of ``dataset`` (see the module's docstring)."""
    n = len(dataset)
    table = _caption_table(dataset)
    taken: set[int] = set()
    out = Pairing([-1] * len(entries), [None] * len(entries), ["order"] * len(entries))
    for k, e in enumerate(entries):
        key = caption_key(e.caption)
        if e.index is not None:
            if e.index >= n:
                raise T2IError(
                    f"{e.where}: index {e.index} is outside the reference's test split "
                    f"({n} images): is the reference the split the images were made from?"
                )
            i, how = e.index, "index"
            ci = next((c for j, c in table.get(key, []) if j == i), None)
        elif key in table:
            found = table[key]
            (i, ci), how = next(((j, c) for j, c in found if j not in taken), found[0]), "caption"
        else:
            continue
        taken.add(i)
        out.test_index[k], out.caption_index[k], out.how[k] = i, ci, how
    free = iter([i for i in range(n) if i not in taken])
    for k in range(len(entries)):
        if out.test_index[k] < 0:  # the next test image nobody has, else image k's position
            out.test_index[k] = next(free, k % n)
    return out


class ImageStream:
    """The given images, a batch at a time, each with its paired test image; iterate it once
    per evaluation. ``num_samples``, ``resolution``, ``seconds`` and ``protocol`` as a
    ``SampleStream`` has them."""

    noise_seed = None
    seconds_label = "reading"  # what ``seconds`` timed, in the protocol's seconds

    def __init__(self, folder: ImageFolder, dataset: Any, resolution: int, batch_size: int = 64):
        if batch_size < 1:
            raise T2IError(f"evaluation batch_size must be at least 1, got {batch_size}")
        self.folder, self.dataset = folder, dataset
        self.resolution, self.batch_size = int(resolution), int(batch_size)
        self.num_samples = len(folder)
        self.pairing = pair_with_split(folder.entries, dataset)
        self.seconds = 0.0  # reading and pairing, the part a run spends generating

    @property
    def protocol(self) -> dict[str, Any]:
        """The shared sample protocol written into metrics.json, with what was read."""
        n, r, p = self.num_samples, self.resolution, self.pairing
        entries = self.folder.entries
        given = self.folder.protocol()
        given["resized"] = sum(e.size != (r, r) for e in entries)
        given["cropped"] = sum(e.size[0] != e.size[1] for e in entries)
        given["resizer"] = f"to {r}x{r} px: {RESIZER}"
        counts = p.counts()
        return {
            "num_samples": n,
            "split": "test",
            "images": f"{n} given images, each paired with a test image of the reference ("
            + ", ".join(f"{v} by {k[3:]}" for k, v in counts.items() if v)
            + ")",
            "noise_seed": None,
            "resolution": r,
            "generator": "none: the images were given",
            "input": given,
            "pairing": {
                **counts,
                "test_images": len(self.dataset),
                "distinct_test_images": len(set(p.test_index)),
                "ground_truth": (
                    "attributes of the paired test image (every caption is one of its own)"
                    if p.has_truth
                    else f"none: {p.caption_index.count(None)} captions are not captions of "
                    "their paired test image"
                ),
                "rule": "the captions file's index, else the first untaken test image with the "
                "same caption (lower-case words), else the first untaken test image",
                "tokens": "the given caption in the reference's vocabulary (first max_words words)",
            },
        }

    @torch.no_grad()
    def __iter__(self) -> Iterator[EvalBatch]:
        t0 = time.time()
        ds = self.dataset
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(0)
        vocab = getattr(ds, "tokenizer", None) or ds.vocab
        max_words = int(getattr(ds, "max_words", 18))
        truth = self.pairing.has_truth
        for s in range(0, self.num_samples, self.batch_size):
            entries = self.folder.entries[s : s + self.batch_size]
            idx = self.pairing.test_index[s : s + self.batch_size]
            cis = self.pairing.caption_index[s : s + self.batch_size]
            items = [
                ds.sample(i, ci) if ci is not None and hasattr(ds, "sample") else ds[i]
                for i, ci in zip(idx, cis, strict=True)
            ]
            fake = torch.stack(
                [torch.from_numpy(load_image(e, self.resolution)).permute(2, 0, 1) for e in entries]
            )
            real = torch.stack([to_uint8(_last(item["images"])) for item in items])
            if real.shape[-2:] != fake.shape[-2:]:
                raise T2IError(
                    f"the reference's test images are {tuple(real.shape[-2:])} px, not "
                    f"{self.resolution}: the dataset ignores the requested resolutions"
                )
            ids, masks = zip(*(vocab.encode(e.caption, max_words) for e in entries), strict=True)
            attrs = [item.get("attributes") for item in items]
            batch = EvalBatch(
                fake=fake.contiguous(),
                real=real,
                tokens=torch.as_tensor([list(i) for i in ids], dtype=torch.int64),
                mask=torch.as_tensor([list(m) for m in masks], dtype=torch.bool),
                captions=[e.caption for e in entries],
                class_ids=torch.as_tensor([int(item.get("class_id", -1)) for item in items]),
                attributes=(
                    torch.stack(attrs)
                    if truth and all(torch.is_tensor(a) and a.numel() for a in attrs)
                    else None
                ),
                indices=list(idx),
                start=s,
            )
            self.seconds += time.time() - t0
            yield batch
            del batch
            t0 = time.time()
        self.seconds += time.time() - t0


def _last(images: Any) -> torch.Tensor:
    return images[-1] if isinstance(images, list | tuple) else images
