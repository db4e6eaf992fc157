"""CLIP score (Hessel et al. 2021) of generated images against their captions, with a local CLIP."""

from __future__ import annotations

from typing import Any

import numpy as np

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    MetricResult,
    StreamingMetric,
    l2_normalise,
    require_hf_folder,
)

from .common import build_joint
from .params import ClipScoreParams


def clip_scores(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Per pair: max(cos, 0) of matching rows."""
    cos = (l2_normalise(image) * l2_normalise(text)).sum(axis=1)
    return np.maximum(cos, 0.0)


class ClipScoreMetric(StreamingMetric):
    """Keeps one score per image (the std needs them), not the images or features."""

    name = "clip_score"

    def __init__(self, params: ClipScoreParams):
        self.p = params

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.enc = build_joint(ctx, "clip", self.p.clip_folder, True)
        self.fake: list[np.ndarray] = []  # max(cos, 0) per image
        self.real: list[np.ndarray] = []

    def update(self, batch: EvalBatch) -> None:
        enc, bs = self.enc, self.ctx.batch_size
        text = enc.text_features(batch.captions, batch.tokens, batch.mask)
        self.fake.append(clip_scores(enc.image_features(batch.fake, bs), text))
        if self.p.real_reference:
            self.real.append(clip_scores(enc.image_features(batch.real, bs), text))

    def finish(self) -> MetricResult:
        enc = self.enc
        per = np.concatenate(self.fake)
        values = {"CLIPScore": float(100 * per.mean()), "CLIP-S": float(2.5 * per.mean())}
        std = {"CLIPScore": float(100 * per.std())}
        details: dict[str, Any] = {}
        if self.p.real_reference:
            real = np.concatenate(self.real)
            details["real_images"] = {"CLIPScore": float(100 * real.mean())}
        self.fake, self.real = [], []
        notes = {
            "CLIPScore": "100 x mean max(cos, 0); ± is the std over images",
            "CLIP-S": "Hessel et al.: 2.5 x mean max(cos, 0)",
        }
        protocol = {
            "encoder": enc.name,
            "weights_sha256": enc.weights_sha256,
            "resizer": enc.resizer,
            "captions": "the caption each image was generated from",
        }
        return MetricResult(values, protocol, std, details, notes, better="higher")


def build_clip_score(params: ClipScoreParams, **ctx: Any) -> ClipScoreMetric:
    if True:  # a missing CLIP folder fails before any generation
        require_hf_folder(params.clip_folder, what="CLIP model folder")
    return ClipScoreMetric(params)
