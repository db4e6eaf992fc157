"""R-precision as DM-GAN computes it (§9.3): the true caption among 100, folds, mean ± std.

The encoder is selectable because scoring with the matcher the generator was trained against
inflates the number: 'run' (that matcher; the papers' protocol), 'held_out' (a matcher pretrained
with another seed, never seen by the generator) or 'clip' (a local CLIP folder).
"""

from __future__ import annotations

from typing import Any

import torch

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    MetricResult,
    StreamingMetric,
    require_hf_folder,
)

from ..common.retrieval import retrieval_r_precision
from .common import PixelLog, build_joint
from .params import RPrecisionParams


class RPrecisionMetric(StreamingMetric):
    """Keeps per-image image and caption features: each image's 99 negatives come from all."""

    name = "r_precision"

    def __init__(self, params: RPrecisionParams):
        self.p = params

    def start(self, ctx: EvalContext) -> None:
        p = self.p
        self.ctx = ctx
        self.enc = build_joint(ctx, p.encoder, p.clip_folder, True, p)
        # per image: its caption's and its image's features (the ranking draws from all of them)
        self.text: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []
        self.class_ids: list[torch.Tensor] = []
        self.pixels = PixelLog(p.quantize)

    def update(self, batch: EvalBatch) -> None:
        enc, bs = self.enc, self.ctx.batch_size
        self.pixels.see(batch)
        self.text.append(
            torch.from_numpy(enc.text_features(batch.captions, batch.tokens, batch.mask))
        )
        fake = batch.pixels("fake", self.p.quantize)
        self.fake.append(torch.from_numpy(enc.image_features(fake, bs)))
        if self.p.real_reference:
            self.real.append(torch.from_numpy(enc.image_features(batch.real, bs)))
        self.class_ids.append(batch.class_ids)

    def finish(self) -> MetricResult:
        p, enc = self.p, self.enc
        text, fake, ids = torch.cat(self.text), torch.cat(self.fake), torch.cat(self.class_ids)
        key = f"R-precision[{p.encoder}]"
        r = retrieval_r_precision(fake, text, ids, p.candidates, p.folds, p.seed)
        details: dict[str, Any] = {}
        if p.real_reference:
            real = torch.cat(self.real)
            rr = retrieval_r_precision(real, text, ids, p.candidates, p.folds, p.seed)
            details["real_images"] = {"mean": rr.mean, "std": rr.std}
        self.text, self.fake, self.real, self.class_ids = [], [], [], []
        note = {
            "run": "encoder the generator was trained against (inflated; the papers' protocol)",
            "held_out": "held-out encoder the generator never saw",
            "clip": "CLIP encoder (held out)",
        }[p.encoder]
        protocol = {
            "encoder": enc.name,
            "encoder_weights_sha256": enc.weights_sha256,
            "candidates": r.candidates,
            "folds": r.folds,
            "samples": r.samples,
            "seed": p.seed,
            "negatives": "captions of other test images of a different class id (any other image "
            "when there are no classes), drawn with replacement when too few",
            "similarity": "cosine; a hit when the true caption ranks strictly first",
            "generated_pixels": self.pixels.describe(),
        }
        return MetricResult(
            {key: r.mean}, protocol, {key: r.std}, details, {key: note}, better="higher"
        )


def build_r_precision(params: RPrecisionParams, **ctx: Any) -> RPrecisionMetric:
    if params.encoder == "clip":  # a missing CLIP folder fails before any generation
        require_hf_folder(params.clip_folder, what="CLIP model folder")
    return RPrecisionMetric(params)
