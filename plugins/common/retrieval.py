"""R-precision (§9.3): does an image's own caption rank first among ``candidates``?

Shared by the matcher pretraining (its report) and the ``r_precision`` metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class RPrecision:
    """R-precision: fraction of images whose true caption ranks first among ``candidates``."""

    mean: float
    std: float
    samples: int
    candidates: int
    folds: int


def retrieval_r_precision(
    codes: torch.Tensor,
    sentences: torch.Tensor,
    class_ids: torch.Tensor | None = None,
    candidates: int = 100,
    folds: int = 10,
    seed: int = 0,
) -> RPrecision:
    """R-precision of image ``codes`` (N, D) against their ``sentences`` (N, D) (§9.3).

    For every image: the true sentence plus ``candidates - 1`` sentences of other images of a
    different class (any other image when a class id is negative or absent), ranked by cosine;
    a hit when the true one is strictly first. Mean over all images, std over ``folds`` folds.
    With fewer suitable images than needed, the others are drawn with replacement.
    """
    n = codes.shape[0]
    if n < 2:
        raise ValueError("R-precision needs at least two image-caption pairs")
    c = torch.nn.functional.normalize(codes.float(), dim=1)
    s = torch.nn.functional.normalize(sentences.float(), dim=1)
    sims = (c @ s.t()).cpu().numpy()
    ids = None if class_ids is None else torch.as_tensor(class_ids).reshape(-1).cpu().numpy()
    rng = np.random.default_rng(seed)
    k = candidates - 1
    hits = np.zeros(n, dtype=np.float64)
    every = np.arange(n)
    for i in range(n):
        allowed = every != i
        if ids is not None and ids[i] >= 0:
            other_class = allowed & (ids != ids[i])
            if other_class.any():
                allowed = other_class
        pool = every[allowed]
        chosen = rng.choice(pool, size=k, replace=len(pool) < k)
        hits[i] = float(sims[i, i] > sims[i, chosen].max())
    rng.shuffle(hits)
    parts = [p for p in np.array_split(hits, min(folds, n)) if len(p)]
    per_fold = np.array([p.mean() for p in parts])
    return RPrecision(float(hits.mean()), float(per_fold.std()), n, candidates, len(parts))


def batch_images(batch: Mapping[str, Any], resolution: int) -> torch.Tensor:
    images = batch["images"]
    if isinstance(images, torch.Tensor):
        return images
    return images[resolution]


def trim_padding(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop word positions that are padding in every caption of the batch (saves compute)."""
    longest = max(int(mask.sum(1).max()), 1) if mask.numel() else 1
    return tokens[:, :longest], mask[:, :longest]


def collate_of(dataset: Any) -> Callable | None:
    return getattr(dataset, "collate", None)


@torch.no_grad()
def evaluate_r_precision(
    matcher: Any,
    dataset: Any,
    samples: int = 1000,
    candidates: int = 100,
    folds: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    resolution: int = -1,
    device: str | torch.device = "cpu",
) -> RPrecision:
    """Encode the first ``samples`` test items with ``matcher`` and compute R-precision."""
    from torch.utils.data import DataLoader, Subset

    was_training = matcher.training
    matcher.eval()
    n = min(samples, len(dataset))
    loader = DataLoader(
        Subset(dataset, range(n)),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_of(dataset),
    )
    codes, sents, ids = [], [], []
    for batch in loader:
        img = batch_images(batch, resolution).to(device)
        codes.append(matcher.encode_image(img).code.cpu())
        text = matcher.encode_text(
            *trim_padding(batch["tokens"].to(device), batch["mask"].to(device))
        )
        sents.append(text.sentence.cpu())
        if "class_id" in batch:
            ids.append(torch.as_tensor(batch["class_id"]).reshape(-1))
    matcher.train(was_training)
    class_ids = torch.cat(ids) if ids else None
    return retrieval_r_precision(
        torch.cat(codes), torch.cat(sents), class_ids, candidates, folds, seed
    )
