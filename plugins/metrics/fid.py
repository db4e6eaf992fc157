"""FID / KID through clean-fid's distance functions, with a selectable feature extractor.

Only clean-fid's Inception gives numbers named FID and KID. The papers' other Inceptions give
``FID[fid_inception]`` (pytorch-fid's FID Inception, the TF-FID weights) and
``FID[imagenet_inception]`` (torchvision's ImageNet Inception as DM-GAN's and DF-GAN's FID code
fed it), each with its resize and uint8 round-trip (``resize``, ``quantize``: the protocol
presets set them). The in-domain extractors (the run's
matcher, a held-out matcher, the shapes oracle's penultimate layer) and the seeded random CNN
give a Fréchet distance ``FD[<extractor>]`` and kernel distance ``KD[<extractor>]`` in their own
feature space: comparable between runs that use the same extractor weights (their SHA-256 is in
the protocol), not with published FIDs.

Streamed: each batch's images become features (2048 floats per image for Inception) and only
the features are kept; KID needs them all, and the Fréchet distance is computed from them as
clean-fid does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    GaussianStats,
    MetricResult,
    StreamingMetric,
    T2IError,
    inception_file,
    kernel_distance,
    require_asset,
    stats_distance,
)

from .common import PixelLog, build_extractor
from .params import FidParams, KidParams


def batch_features(
    batch: EvalBatch, extractor: Any, which: str, batch_size: int, quantize: str = "round"
) -> np.ndarray:
    """Features of a batch's generated ('fake') or real images, once per extractor, resize,
    round-trip and batch."""
    q = quantize if which == "fake" else "stored"
    key = f"feats:{which}:{q}:{extractor.name}:{extractor.resize_method}:{extractor.weights_sha256}"
    return batch.cached(key, lambda: extractor.features(batch.pixels(which, quantize), batch_size))


class FrechetMetric(StreamingMetric):
    """FD/KD (FID/KID with Inception): keeps per-image features, never the images."""

    def __init__(self, params: FidParams, name: str):
        self.p, self.name = params, name

    def start(self, ctx: EvalContext) -> None:
        p = self.p
        if not (p.fid or p.kid):
            raise T2IError(f"metric '{self.name}': both fid and kid are off")
        self.ctx = ctx
        self.ex = build_extractor(
            ctx, p.extractor, p.inception_path, p.random_seed, p.random_dim, p, p.weights, p.resize
        )
        self.need_real = p.reference_stats is None or p.kid or bool(p.save_reference_stats)
        self.fake: list[np.ndarray] = []
        self.real: list[np.ndarray] = []
        self.pixels = PixelLog(p.quantize)

    def update(self, batch: EvalBatch) -> None:
        bs = self.ctx.batch_size
        self.pixels.see(batch)
        self.fake.append(batch_features(batch, self.ex, "fake", bs, self.p.quantize))
        if self.need_real:
            self.real.append(batch_features(batch, self.ex, "real", bs))

    def finish(self) -> MetricResult:
        p, ex = self.p, self.ex
        if p.extractor == "inception":
            fd_key, kd_key = "FID", "KID"
        elif ex.is_inception:
            fd_key, kd_key = f"FID[{p.extractor}]", f"KID[{p.extractor}]"
        else:
            fd_key, kd_key = f"FD[{p.extractor}]", f"KD[{p.extractor}]"
        fake = np.concatenate(self.fake)
        real = np.concatenate(self.real) if self.real else None
        self.fake, self.real = [], []
        values: dict[str, float] = {}
        notes: dict[str, str] = {}
        protocol: dict[str, Any] = ex.describe(int(self.ctx.resolution or 0))
        protocol["feature_dim"] = int(fake.shape[1])
        protocol["distance"] = "clean-fid frechet_distance / kernel_distance"
        protocol["generated_pixels"] = self.pixels.describe()
        if not ex.is_inception:
            protocol["label"] = (
                f"Fréchet distance in the '{ex.name}' feature space; not FID, not comparable with "
                "published FIDs"
            )
        if p.fid:
            if p.reference_stats is not None:
                ref = GaussianStats.load(p.reference_stats)
                protocol["reference"] = f"statistics file {p.reference_stats}"
            else:
                assert real is not None
                ref = GaussianStats.from_features(real)
                protocol["reference"] = (
                    f"the {len(real)} real test images behind the evaluated captions"
                )
            if p.save_reference_stats:
                assert real is not None
                GaussianStats.from_features(real).save(p.save_reference_stats)
            values[fd_key] = stats_distance(GaussianStats.from_features(fake), ref)
            notes[fd_key] = FID_NOTES.get(p.extractor, protocol.get("label", ""))
        details: dict[str, Any] = {}
        better: dict[str, str] = {k: "lower" for k in (fd_key, kd_key)}
        if p.floor:
            from .floor import fd_floor

            floor = fd_floor(self.ctx, ex, len(fake))
            values[f"{fd_key} floor"] = floor["value"]
            notes[f"{fd_key} floor"] = (
                f"real vs real: {floor['n']} train images vs {floor['n']} test images in the "
                "same space (what two real samples of this size give)"
            )
            better[f"{fd_key} floor"] = "neutral"
            protocol["floor"] = floor
            details["real_images"] = {fd_key: floor["value"]}
        if p.kid:
            assert real is not None
            values[kd_key] = kernel_distance(
                real, fake, p.kid_subsets, p.kid_subset_size, seed=p.kid_seed
            )
            protocol["kid"] = {
                "subsets": p.kid_subsets,
                "subset_size": min(p.kid_subset_size, len(real), len(fake)),
                "seed": p.kid_seed,
                "reference": f"the {len(real)} real test images (features; stats files cannot give KID)",
            }
        return MetricResult(values, protocol, details=details, notes=notes, better=better)


FID_NOTES = {
    "inception": "FID (clean-fid Inception)",
    "fid_inception": "FID with pytorch-fid's FID Inception (the TF-FID weights)",
    "imagenet_inception": "FID with torchvision's ImageNet Inception as pytorch-fid 802da39 "
    "(DM-GAN's and DF-GAN's 'Pytorch FID')",
}


def _check_assets(params: FidParams) -> None:
    """Fail when the metric is built (before any generation) if the Inception file is absent."""
    if params.extractor == "inception":
        inception_file(params.inception_path)
    elif params.extractor == "fid_inception":
        require_asset("pytorch_fid_inception", params.weights)
    elif params.extractor == "imagenet_inception":
        require_asset("inception_v3_imagenet", params.weights)


def build_fid(params: FidParams, **ctx: Any) -> FrechetMetric:
    _check_assets(params)
    return FrechetMetric(params, "fid")


def build_kid(params: KidParams, **ctx: Any) -> FrechetMetric:
    _check_assets(params)
    return FrechetMetric(params, "kid")


__all__ = ["FidParams", "FrechetMetric", "KidParams", "batch_features"]
