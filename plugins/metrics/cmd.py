"""GR-GAN's CMD and ITDis (paper definitions and the released script's), in a selectable space.

r = real images, f = generated images, l = captions, each summarised by a Gaussian; d is the
Fréchet distance. Image features are L2-normalised and scaled by 10, text features only
L2-normalised, as in the released ``eval/CMD/CMD_score.py`` (§9.4), whose images go to CLIP
resized to its input size in [0, 1] without CLIP's mean/std normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from t2i_stages.plugin import (
    CMD_FORMS,
    EvalBatch,
    EvalContext,
    GaussianStats,
    MetricResult,
    StreamingMetric,
    T2IError,
    cmd_from_stats,
    l2_normalise,
    require_hf_folder,
)

from .common import PixelLog, build_joint
from .params import CmdParams

# GR-GAN's released statistics (BoO-18/GR-GAN eval/CMD/, commit c4c90d7 "CMD data"), by SHA-256:
# mu/sigma of its script's features, meaningful only in that script's feature space.
RELEASED_STATS = {
    "9f98bfbfa1b0959630db7a955f58672163a3523c3bb6a8382471194d17bf6b2c": (
        "GR-GAN's released eval/CMD/image_feature.npz (COCO-2014 test images)"
    ),
    "97d44431a692d17ae8a583119d64d615c1f948cdb1b8248b52f39a06a09575b7": (
        "GR-GAN's released eval/CMD/sent_feature.npz (every COCO-2014 test caption)"
    ),
}
SCRIPT_SPACE = (
    "OpenAI CLIP ViT-B/32, images resized to 224 in [0, 1] without CLIP's normalisation, "
    "image features L2-normalised x 10, text features L2-normalised"
)


def is_vit_b32(config: dict[str, Any]) -> bool:
    """Whether a Hugging Face CLIP config.json is ViT-B/32's (512-d joint space)."""
    vision = config.get("vision_config") or {}
    return (
        vision.get("patch_size") == 32
        and vision.get("hidden_size", 768) == 768
        and config.get("projection_dim", 512) == 512
    )


def released_stats_problems(params: CmdParams, clip_config: dict[str, Any] | None) -> list[str]:
    """How ``params`` differ from the space GR-GAN's released statistics were computed in."""
    problems = []
    if params.space != "clip":
        problems.append(f"space is '{params.space}', not clip")
    elif clip_config is not None and not is_vit_b32(clip_config):
        problems.append(f"clip_folder {params.clip_folder} is not CLIP ViT-B/32")
    if params.clip_normalize:
        problems.append("clip_normalize is true")
    if params.image_scale != 10.0:
        problems.append(f"image_scale is {params.image_scale:g}, not 10")
    if params.text_scale != 1.0:
        problems.append(f"text_scale is {params.text_scale:g}, not 1")
    return problems


def check_reference_stats(params: CmdParams, clip_config: dict[str, Any] | None) -> dict[str, str]:
    """Which statistics files are GR-GAN's released ones ({field: what}); a T2IError naming the
    file and every condition that fails when the run's space is not the script's."""
    from t2i_stages.plugin import sha256_file

    found = {}
    for field in ("real_stats", "text_stats"):
        path = getattr(params, field)
        if path is None or not Path(path).is_file():
            continue
        what = RELEASED_STATS.get(sha256_file(Path(path)))
        if what is None:
            continue
        problems = released_stats_problems(params, clip_config)
        if problems:
            raise T2IError(
                f"cmd: {field} {path} is {what}, valid only in its script's space "
                f"({SCRIPT_SPACE}): {'; '.join(problems)}"
            )
        found[field] = what
    return found


def _all_captions(ctx: EvalContext, batch: EvalBatch) -> tuple[list[str], Any, Any]:
    """Every caption of the batch's test images, tokenised like the dataset does."""
    import torch

    ds = ctx.test_data
    if not hasattr(ds, "captions"):
        raise T2IError("cmd: captions 'all' needs a dataset with captions(i)")
    tok = getattr(ds, "tokenizer", None) or getattr(ds, "vocab", None)
    max_words = int(getattr(ds, "max_words", batch.tokens.shape[1]))
    caps: list[str] = [c for i in batch.indices for c in ds.captions(i)]
    ids, masks = zip(*(tok.encode(c, max_words) for c in caps), strict=True)
    return caps, torch.as_tensor([list(i) for i in ids]), torch.as_tensor([list(m) for m in masks])


class CmdMetric(StreamingMetric):
    """Keeps per-image features in the joint space (for the three Gaussians), not the images."""

    name = "cmd"

    def __init__(self, params: CmdParams):
        self.p = params

    def start(self, ctx: EvalContext) -> None:
        p = self.p
        self.ctx = ctx
        self.enc = build_joint(ctx, p.space, p.clip_folder, p.clip_normalize, p, p.resize)
        self.fake: list[np.ndarray] = []
        self.real: list[np.ndarray] = []
        self.text: list[np.ndarray] = []
        self.n_images = self.n_captions = 0
        self.pixels = PixelLog(p.quantize)

    def update(self, batch: EvalBatch) -> None:
        p, enc, bs = self.p, self.enc, self.ctx.batch_size
        self.n_images += len(batch)
        self.pixels.see(batch)
        fake = batch.pixels("fake", p.quantize)
        self.fake.append(l2_normalise(enc.image_features(fake, bs), p.image_scale))
        if not p.real_stats:
            self.real.append(l2_normalise(enc.image_features(batch.real, bs), p.image_scale))
        if not p.text_stats:
            caps, tokens, mask = (
                (batch.captions, batch.tokens, batch.mask)
                if p.captions == "sampled"
                else _all_captions(self.ctx, batch)
            )
            self.n_captions += len(caps)
            self.text.append(l2_normalise(enc.text_features(caps, tokens, mask), p.text_scale))

    def finish(self) -> MetricResult:
        p, enc = self.p, self.enc
        fake = GaussianStats.from_features(np.concatenate(self.fake))
        released = check_reference_stats(p, None)  # checked at build; named in the protocol
        if p.real_stats:
            real = GaussianStats.load(p.real_stats)
            real_src = f"statistics file {p.real_stats}" + (
                f" ({released['real_stats']}; its space's conditions checked)"
                if "real_stats" in released
                else ""
            )
        else:
            real = GaussianStats.from_features(np.concatenate(self.real))
            real_src = f"the {self.n_images} real test images behind the evaluated captions"
        if p.text_stats:
            text = GaussianStats.load(p.text_stats)
            text_src = f"statistics file {p.text_stats}" + (
                f" ({released['text_stats']}; its space's conditions checked)"
                if "text_stats" in released
                else ""
            )
        else:
            text = GaussianStats.from_features(np.concatenate(self.text))
            text_src = f"{self.n_captions} captions ({p.captions}) of the evaluated test images"
        self.fake, self.real, self.text = [], [], []
        if not (real.mu.shape == fake.mu.shape == text.mu.shape):
            raise T2IError(
                f"cmd: feature sizes differ (real {real.mu.shape}, fake {fake.mu.shape}, text "
                f"{text.mu.shape}); reference statistics must come from the same feature space"
            )
        if p.save_stats:
            folder = Path(p.save_stats)
            for name, st in (("real", real), ("text", text), ("fake", fake)):
                st.save(folder / f"{name}.npz")
        d = cmd_from_stats(real, fake, text)
        values = {
            "CMD": d[f"CMD_{p.headline}"],
            "ITDis": d[f"ITDis_{p.headline}"],
            "CMD (paper)": d["CMD_paper"],
            "ITDis (paper)": d["ITDis_paper"],
            "CMD (script)": d["CMD_script"],
            "ITDis (script)": d["ITDis_script"],
        }
        notes = {
            "CMD": f"{p.headline} form: {CMD_FORMS[p.headline]}",
            "ITDis": f"{p.headline} form",
            "CMD (paper)": "with |.| (GR-GAN paper)",
            "ITDis (paper)": "with |.| (GR-GAN paper)",
            "CMD (script)": "without |.| (released CMD_score.py)",
            "ITDis (script)": "signed d(f,l) - d(r,l) (released CMD_score.py)",
        }
        details = {k: d[k] for k in ("d_real_fake", "d_fake_text", "d_real_text")}
        protocol = {
            "space": enc.name,
            "weights_sha256": enc.weights_sha256,
            "resizer": enc.resizer,
            "image_features": f"L2-normalised x {p.image_scale}",
            "text_features": f"L2-normalised x {p.text_scale}",
            "distance": "Fréchet (clean-fid frechet_distance)",
            "forms": CMD_FORMS,
            "headline_form": p.headline,
            "real": real_src,
            "text": text_src,
            "feature_dim": int(np.asarray(fake.mu).shape[0]),
            "generated_pixels": self.pixels.describe(),
        }
        return MetricResult(values, protocol, details=details, notes=notes, better="lower")


def build_cmd(params: CmdParams, **ctx: Any) -> CmdMetric:
    config = None
    if params.space == "clip":  # a missing CLIP folder fails before any generation
        folder = require_hf_folder(params.clip_folder, what="CLIP model folder")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if params.expect_vit_b32 and not is_vit_b32(config):
            raise T2IError(
                f"cmd: clip_folder {folder} is not CLIP ViT-B/32 (expect_vit_b32: GR-GAN's "
                "CMD_score.py loads ViT-B/32); place openai/clip-vit-base-patch32 there"
            )
    elif params.expect_vit_b32:
        raise T2IError(f"cmd: expect_vit_b32 needs space 'clip', not '{params.space}'")
    check_reference_stats(params, config)  # the released statistics, in the wrong space
    return CmdMetric(params)
