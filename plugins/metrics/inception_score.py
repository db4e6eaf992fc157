"""Inception Score with torchvision's ImageNet Inception-v3 (local weights only): 10 splits.

Not the TF graph DM-GAN used (§9.1), so absolute values differ slightly from published ones;
the protocol records the weights' SHA-256 and the resizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    MetricResult,
    StreamingMetric,
    T2IError,
    inception_score_from_probs,
    require_asset,
    resize_uint8,
    sha256_file,
)

from .params import InceptionScoreParams


def load_inception(path: str | None, device: torch.device) -> tuple[torch.nn.Module, str]:
    from torchvision.models import inception_v3

    file = require_asset("inception_v3_imagenet", path)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    state = torch.load(file, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise T2IError(f"{file}: not torchvision's Inception-v3 weights ({exc})") from None
    return net.to(device).eval().requires_grad_(False), sha256_file(file)


class InceptionScoreMetric(StreamingMetric):
    """Keeps each image's class probabilities (the splits need them all), not the image."""

    name = "inception_score"

    def __init__(self, params: InceptionScoreParams, device: torch.device | str = "cpu"):
        self.p = params
        # built here so that a missing weights file fails before any generation
        self.net, self.sha = load_inception(params.weights, torch.device(device))

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        dev = next(self.net.parameters()).device
        out = []
        for s in range(0, len(images), batch_size):
            x = resize_uint8(images[s : s + batch_size], 299, "bilinear") / 127.5 - 1.0
            out.append(torch.softmax(self.net(x.to(dev)), dim=1).double().cpu())
        return torch.cat(out).numpy()

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.net.to(ctx.device)
        self.probs: list[np.ndarray] = []  # 1000 class probabilities per image

    def update(self, batch: EvalBatch) -> None:
        self.probs.append(self.probabilities(batch.fake, self.ctx.batch_size))

    def finish(self) -> MetricResult:
        probs = np.concatenate(self.probs)
        self.probs = []
        splits = min(self.p.splits, len(probs))
        mean, std = inception_score_from_probs(probs, splits)
        protocol = {
            "network": "torchvision inception_v3 (IMAGENET1K_V1), 1000-way softmax",
            "weights_sha256": self.sha,
            "resizer": f"clean-fid PIL bilinear {self.ctx.resolution} -> 299 px, [-1, 1]",
            "splits": splits,
        }
        notes = {"IS": "± std over splits"}
        return MetricResult({"IS": mean}, protocol, {"IS": std}, notes=notes, better="higher")


def build_inception_score(
    params: InceptionScoreParams, device: Any = "cpu", **ctx: Any
) -> InceptionScoreMetric:
    return InceptionScoreMetric(params, device)
