"""Inception Score from local weights, 10 splits: torchvision's ImageNet Inception-v3 (default)
or the TF graph inception-2015-12-05 that improved-gan's IS used (``network: tf_inception``,
from clean-fid's TorchScript file, 1008 classes, no output bias: AttnGAN's and DM-GAN's COCO IS).

The protocol records the network, the weights' SHA-256, the resize and the uint8 round-trip.
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
    TFInceptionClassifier,
    inception_score_from_probs,
    load_imagenet_inception,
    resize_images,
    sha256_file,
)

from .common import PixelLog
from .params import InceptionScoreParams


def load_inception(path: str | None, device: torch.device) -> tuple[torch.nn.Module, str]:
    """torchvision's ImageNet Inception-v3 (1000-way head) and its file's SHA-256."""
    net, file = load_imagenet_inception(path, device)
    return net, sha256_file(file)


class _TorchvisionClassifier:
    """torchvision's 1000-way softmax of [-1, 1] images (transform_input off)."""

    input_range = "[0, 255] / 127.5 - 1: [-1, 1]"
    scale = "[-1, 1]"

    def __init__(self, path: str | None, device: torch.device):
        self.net, self.sha256 = load_inception(path, device)

    def to(self, device: torch.device) -> _TorchvisionClassifier:
        self.net.to(device)
        return self

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        return torch.softmax(self.net(x / 127.5 - 1.0), dim=1).double().cpu().numpy()


NETWORKS = {
    "torchvision": "torchvision inception_v3 (IMAGENET1K_V1), 1000-way softmax",
    "tf_inception": "the TF graph inception-2015-12-05 (clean-fid's TorchScript "
    "inception-2015-12-05.pt), 1008-way softmax without the output bias (improved-gan's IS)",
}


class InceptionScoreMetric(StreamingMetric):
    """Keeps each image's class probabilities (the splits need them all), not the image."""

    name = "inception_score"

    def __init__(self, params: InceptionScoreParams, device: torch.device | str = "cpu"):
        self.p = params
        self.resize = params.resize or "clean_bilinear"
        # built here so that a missing weights file fails before any generation
        dev = torch.device(device)
        if params.network == "tf_inception":
            self.net: Any = TFInceptionClassifier(params.inception_path, dev)
        else:
            self.net = _TorchvisionClassifier(params.weights, dev)
        self.sha = self.net.sha256

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Class probabilities of (N, 3, H, W) images in [0, 255] (uint8 or float)."""
        out = []
        for s in range(0, len(images), batch_size):
            x = resize_images(images[s : s + batch_size], 299, self.resize)
            out.append(self.net.probabilities(x.to(self.device)))
        return np.concatenate(out)

    @property
    def device(self) -> torch.device:
        return self.ctx.device if getattr(self, "ctx", None) is not None else torch.device("cpu")

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.net.to(ctx.device)
        self.probs: list[np.ndarray] = []  # class probabilities per image
        self.pixels = PixelLog(self.p.quantize)

    def update(self, batch: EvalBatch) -> None:
        self.pixels.see(batch)
        images = batch.pixels("fake", self.p.quantize)
        self.probs.append(self.probabilities(images, self.ctx.batch_size))

    def finish(self) -> MetricResult:
        probs = np.concatenate(self.probs)
        self.probs = []
        splits = min(self.p.splits, len(probs))
        mean, std = inception_score_from_probs(probs, splits)
        if self.resize.startswith("clean_"):
            how = f"clean-fid PIL {self.resize.removeprefix('clean_')}"
        else:
            how = {"pil_bilinear": "PIL bilinear on uint8", "torch_bilinear": "torch bilinear"}[
                self.resize
            ]
        protocol = {
            "network": NETWORKS[self.p.network],
            "weights_sha256": self.sha,
            "resizer": f"{how} {self.ctx.resolution} -> 299 px, {self.net.scale}",
            "input_range": self.net.input_range,
            "generated_pixels": self.pixels.describe(),
            "splits": splits,
        }
        notes = {"IS": "± std over splits"}
        return MetricResult({"IS": mean}, protocol, {"IS": std}, notes=notes, better="higher")


def build_inception_score(
    params: InceptionScoreParams, device: Any = "cpu", **ctx: Any
) -> InceptionScoreMetric:
    return InceptionScoreMetric(params, device)
