"""The real-vs-real floor of a Fréchet distance: the first N real train images against the first
N real test images, N the evaluation's sample count, in the metric's own feature space.

A generator's FD cannot be read without it: two independent draws of real images are not at 0
(finite N, and in the oracle's space a few thousand features per image), so ``FD[oracle]`` is
reported beside this floor. The value is a pure function of the dataset, the resolution, N and
the extractor's weights, so it is cached once as a content-keyed artefact
(``<cache root>/fd-floor/<hash>/config.json``) and shared by every run on that dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from t2i_stages.plugin import (
    Artefact,
    EvalContext,
    GaussianStats,
    T2IError,
    stats_distance,
    to_uint8,
    write_config,
)

FLOOR_VERSION = 1
# dataset params that do not change which images the first N of a split are
VOLATILE = ("cache_dir", "workers", "resolutions", "train_size", "test_size", "max_words")


def real_batches(dataset: Any, n: int, resolution: int, batch_size: int) -> Iterator[torch.Tensor]:
    """The first ``n`` images of a split as uint8 (B, 3, r, r) at ``resolution``."""
    loader = DataLoader(
        Subset(dataset, range(n)),
        batch_size=batch_size,
        collate_fn=getattr(dataset, "collate", None),
    )
    for batch in loader:
        images = batch["images"]
        images = list(images) if isinstance(images, list | tuple) else [images]
        sized = [x for x in images if x.shape[-1] == resolution]
        if not sized:
            sizes = sorted({int(x.shape[-1]) for x in images})
            raise T2IError(
                f"fid floor: the dataset gives images of {sizes} px, not the evaluated {resolution}"
            )
        yield to_uint8(sized[-1])


def dataset_identity(dataset: Any) -> dict[str, Any] | None:
    """What decides a split's first images, for the cache key (None: not cacheable)."""
    params = getattr(dataset, "params", None)
    if params is None:
        return None
    content = getattr(params, "content", None)
    data = content() if callable(content) else params.model_dump(mode="json")
    data = {k: v for k, v in data.items() if k not in VOLATILE}
    return {"dataset": getattr(dataset, "name", type(dataset).__name__), "content": data}


def fd_floor(ctx: EvalContext, extractor: Any, n: int) -> dict[str, Any]:
    """FD between the first ``n`` real train images and the first ``n`` real test images in
    ``extractor``'s space, from the cache or computed (then cached). ``n`` is capped by the
    smaller split, and the returned record says so."""
    train, test = ctx.train_data(), ctx.test_data
    res = int(ctx.resolution or 0)
    count = min(int(n), len(train), len(test))
    if count < 2:
        raise T2IError(f"fid floor: needs at least 2 images in each split, got {count}")
    ident = dataset_identity(test)
    key = {
        "version": FLOOR_VERSION,
        "data": ident,
        "resolution": res,
        "n": count,
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "resize": extractor.resize_method,
    }
    record = {
        "value": None,
        "splits": "the first N train images vs the first N test images (real, stored pixels)",
        "n": count,
        "asked_n": int(n),
        "resolution": res,
        "cached": False,
    }
    if count < n:
        record["note"] = f"N capped at {count}: a split has fewer than {n} images"
    art = None
    if ident is not None:
        root = getattr(getattr(test, "params", None), "cache_dir", None)
        art = Artefact("fd-floor", key, root=root)
        config = art.config()
        if config and isinstance(config.get("value"), float):
            return {**record, "value": config["value"], "cached": True, "cache": str(art.path)}
    ctx.log(f"eval: FD floor in the '{extractor.name}' space, {count} train vs {count} test images")
    bs = ctx.batch_size
    feats = [
        np.concatenate([extractor.features(x, bs) for x in real_batches(ds, count, res, bs)])
        for ds in (train, test)
    ]
    value = float(
        stats_distance(GaussianStats.from_features(feats[0]), GaussianStats.from_features(feats[1]))
    )
    record["value"] = value
    if art is not None:
        with art.lock():
            with art.building() as tmp:
                write_config(tmp, {"key": key, "value": value})
        record["cache"] = str(art.path)
    return record
