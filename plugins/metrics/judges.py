"""Held-out judges: R-precision and CMD in the spaces of matchers that no generator trained
against, so that families with different training matchers (GR-GAN's ITM, the others' DAMSM)
are scored by the same yardsticks.

Each judge (an ``itm`` and a ``damsm`` by default) is pretrained on the dataset at the evaluated
resolution with its own seed and cached by the matcher pretraining cache under a key marked
``role: judge`` that holds the dataset's content, not the run's recipe: every family and seed
evaluated on the same dataset and resolution meets the same judge, and no training run ever
loads it (a run's matcher key holds its recipe's dataset slot instead). A judge whose seed is
the run's own matcher's, or whose weights hash to the run's matcher's, is refused.

Reported per judge: ``R-precision[judge_<name>]`` (1 true caption among ``candidates``, ± std
over folds, the real images' ceiling beside it) and ``CMD[judge_<name>]`` (GR-GAN's paper form:
images L2-normalised x 10, captions L2-normalised); with two judges or more, ``R-precision
spread[judges]`` and ``CMD spread[judges]`` (max - min over the judges, |a - b| for two).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    GaussianStats,
    MatcherEncoder,
    MetricResult,
    StreamingMetric,
    T2IError,
    cmd_from_stats,
    l2_normalise,
)

from ..common.retrieval import retrieval_r_precision
from .common import PixelLog, run_matcher_seed
from .floor import dataset_identity
from .params import JudgesParams, JudgeSpec

ROLE = "judge"


def judge_dataset_key(train: Any, test: Any, resolution: int) -> dict[str, Any]:
    """The judge's data for its cache key: the dataset's content and split sizes, the
    resolution and the word positions; never the run's recipe (so every family shares it)."""
    from t2i_stages.plugins.matchers.pretrain.cache import dataset_fingerprint

    ident = dataset_identity(test)
    return {
        "role": ROLE,
        "data": ident if ident is not None else dataset_fingerprint(test),
        "train_size": len(train),
        "test_size": len(test),
        "max_words": getattr(test, "max_words", None),
        "resolution": int(resolution),
    }


def _resolution_index(dataset: Any, resolution: int) -> int:
    """Where ``resolution`` is in the dataset's list, counted from the end (the same index for
    a three-stage and a one-stage generator's dataset, so the cache key does not differ)."""
    sizes = list(getattr(dataset, "resolutions", []) or [resolution])
    if resolution not in sizes:
        raise T2IError(
            f"judges: the train split has {sizes} px images, not the evaluated {resolution}"
        )
    return sizes.index(resolution) - len(sizes)


def check_seed(ctx: EvalContext, spec: JudgeSpec) -> None:
    """Refuse a judge that could be the generator's own training matcher (same seed)."""
    seed = run_matcher_seed(ctx)
    if seed is not None and spec.seed == seed:
        raise T2IError(
            f"judges: judge '{spec.name}' has seed {spec.seed}, the seed the run's own matcher "
            "was pretrained with; a judge must never be the matcher the generator trained "
            "against: give the judge another seed"
        )


def judge_encoder(ctx: EvalContext, spec: JudgeSpec) -> tuple[MatcherEncoder, dict[str, Any]]:
    """The judge's encoder (pretrained or from the cache) and what the protocol records."""
    check_seed(ctx, spec)

    def build() -> tuple[MatcherEncoder, dict[str, Any]]:
        from t2i_stages.plugins.matchers.pretrain import pretrain_matcher

        train, test = ctx.train_data(), ctx.test_data
        res = int(ctx.resolution or 0)
        slot = spec.matcher
        resolved = slot.resolved
        if resolved is None:
            resolved = ctx.registry.validate_params("matcher", slot.type, slot.params)
        pre = resolved.pretrain.model_copy(
            update={"resolution": _resolution_index(train, res), "seed": spec.seed}
        )
        vocab = getattr(train, "vocab", None) or ctx.vocab
        context = {"vocab": vocab, "vocab_size": len(vocab)} if vocab is not None else {}
        ctx.log(f"eval: judge '{spec.name}' ({slot.type}, seed {spec.seed}), pretrained or cached")
        result = pretrain_matcher(
            (slot.type, resolved),
            train,
            test,
            pre,
            registry=ctx.registry,
            dataset_key=judge_dataset_key(train, test, res),
            seed=spec.seed,
            context=context,
            device=ctx.device,
            log=ctx.log,
        )
        if not result.complete:
            raise T2IError(
                f"judges: judge '{spec.name}' stopped at step {result.steps} of "
                f"{result.target_steps} ({result.path}); a judge must be complete, so that every "
                "evaluation meets the same one: give its pretrain no max_minutes and run again "
                "(the cached progress is continued)"
            )
        matcher = result.matcher.to(ctx.device).eval().requires_grad_(False)
        enc = MatcherEncoder(
            matcher, f"judge_{spec.name}({slot.type}, seed={spec.seed})", ctx.device
        )
        if ctx.matcher is not None:
            own = MatcherEncoder(ctx.matcher, "run-matcher", ctx.device).weights_sha256
            if own == enc.weights_sha256:
                raise T2IError(
                    f"judges: judge '{spec.name}' has the run's own matcher's weights "
                    f"(sha256 {own[:12]}); a judge must be a matcher no generator trained against"
                )
        rp = result.r_precision
        info = {
            "type": slot.type,
            "seed": spec.seed,
            "cache": str(result.path),
            "cache_key": result.key,
            "role": f"{ROLE}: cached under its own key, never loaded by a training run",
            "how": result.how or ("loaded" if result.from_cache else "trained"),
            "steps": result.steps,
            "complete": result.complete,
            "real_test_r_precision": rp.__dict__ if rp is not None else None,
            "weights_sha256": enc.weights_sha256,
            "run_matcher_seed": run_matcher_seed(ctx),
        }
        return enc, info

    return ctx.cached(f"judge:{spec.model_dump_json()}", build)


class JudgesMetric(StreamingMetric):
    """Keeps, per judge, each image's caption, generated-image and real-image features."""

    name = "judges"

    def __init__(self, params: JudgesParams):
        self.p = params

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        for j in self.p.judges:  # every judge's seed before any is trained
            check_seed(ctx, j)
        self.encoders = {j.name: judge_encoder(ctx, j) for j in self.p.judges}
        self.feats: dict[str, dict[str, list[np.ndarray]]] = {
            n: {"text": [], "fake": [], "real": []} for n in self.encoders
        }
        self.class_ids: list[torch.Tensor] = []
        self.pixels = PixelLog(self.p.quantize)

    def update(self, batch: EvalBatch) -> None:
        bs = self.ctx.batch_size
        self.pixels.see(batch)
        fake = batch.pixels("fake", self.p.quantize)
        for name, (enc, _) in self.encoders.items():
            f = self.feats[name]
            f["text"].append(enc.text_features(batch.captions, batch.tokens, batch.mask))
            f["fake"].append(enc.image_features(fake, bs))
            f["real"].append(enc.image_features(batch.real, bs))
        self.class_ids.append(batch.class_ids)

    def finish(self) -> MetricResult:
        p = self.p
        ids = torch.cat(self.class_ids)
        values: dict[str, float] = {}
        std: dict[str, float] = {}
        notes: dict[str, str] = {}
        better: dict[str, str] = {}
        real_images: dict[str, float] = {}
        per_judge: dict[str, Any] = {}
        for name, (_, info) in self.encoders.items():
            text, fake, real = (
                np.concatenate(self.feats[name][k]) for k in ("text", "fake", "real")
            )
            rp_key, cmd_key = f"R-precision[judge_{name}]", f"CMD[judge_{name}]"
            r = retrieval_r_precision(
                torch.from_numpy(fake), torch.from_numpy(text), ids, p.candidates, p.folds, p.seed
            )
            rr = retrieval_r_precision(
                torch.from_numpy(real), torch.from_numpy(text), ids, p.candidates, p.folds, p.seed
            )
            d = cmd_from_stats(
                GaussianStats.from_features(l2_normalise(real, p.image_scale)),
                GaussianStats.from_features(l2_normalise(fake, p.image_scale)),
                GaussianStats.from_features(l2_normalise(text, p.text_scale)),
            )
            values[rp_key], std[rp_key], real_images[rp_key] = r.mean, r.std, rr.mean
            values[cmd_key] = d["CMD_paper"]
            better[rp_key], better[cmd_key] = "higher", "lower"
            notes[rp_key] = f"held-out judge '{name}' ({info['type']}, seed {info['seed']})"
            notes[cmd_key] = f"CMD (paper form) in judge '{name}''s space"
            per_judge[name] = {
                **info,
                "r_precision": {"mean": r.mean, "std": r.std, "samples": r.samples},
                "r_precision_real_images": {"mean": rr.mean, "std": rr.std},
                "cmd": {
                    k: d[k] for k in ("CMD_paper", "ITDis_paper", "CMD_script", "ITDis_script")
                },
                "distances": {k: d[k] for k in ("d_real_fake", "d_fake_text", "d_real_text")},
            }
        self.feats, self.class_ids = {}, []
        if len(per_judge) >= 2:
            for metric in ("R-precision", "CMD"):
                got = [values[f"{metric}[judge_{n}]"] for n in per_judge]
                key = f"{metric} spread[judges]"
                values[key] = float(max(got) - min(got))
                better[key] = "neutral"
                notes[key] = f"max - min of {metric} over the {len(got)} judges (|a - b| for two)"
        protocol = {
            "judges": per_judge,
            "r_precision": {
                "candidates": p.candidates,
                "folds": p.folds,
                "seed": p.seed,
                "negatives": "captions of other test images of a different class id",
            },
            "cmd": {
                "image_features": f"L2-normalised x {p.image_scale}",
                "text_features": f"L2-normalised x {p.text_scale}",
                "captions": "the caption of each evaluated image",
                "real": "the real test images behind the evaluated captions",
            },
            "generated_pixels": self.pixels.describe(),
        }
        details = {"real_images": real_images}
        return MetricResult(values, protocol, std, details, notes, better=better)


def build_judges(params: JudgesParams, **ctx: Any) -> JudgesMetric:
    return JudgesMetric(params)
