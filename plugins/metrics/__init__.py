"""Built-in metrics: FID/KID, IS, R-precision, CMD/ITDis, CLIP score, attribute accuracy,
held-out judges.

Each factory returns an object with ``name`` and ``compute(ctx: EvalContext) -> MetricResult``
(``t2i_stages.evaluation.context``); ``t2i_stages.evaluation.evaluate`` runs them.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import (
    AttributeAccuracyParams,
    ClipScoreParams,
    CmdParams,
    FidParams,
    InceptionScoreParams,
    JudgesParams,
    KidParams,
    RPrecisionParams,
)


@hookimpl
def t2i_stages_metrics() -> dict[str, ComponentSpec]:
    return {
        "fid": ComponentSpec(
            "t2i_stages.plugins.metrics.fid:build_fid",
            FidParams,
            "FID/KID via clean-fid (or FD/KD in an in-domain feature space)",
        ),
        "kid": ComponentSpec(
            "t2i_stages.plugins.metrics.fid:build_kid",
            KidParams,
            "KID via clean-fid (or KD in another space)",
        ),
        "inception_score": ComponentSpec(
            "t2i_stages.plugins.metrics.inception_score:build_inception_score",
            InceptionScoreParams,
            "Inception Score, 10 splits, mean ± std",
        ),
        "r_precision": ComponentSpec(
            "t2i_stages.plugins.metrics.r_precision:build_r_precision",
            RPrecisionParams,
            "R-precision, 1 true caption among 100, folds",
        ),
        "cmd": ComponentSpec(
            "t2i_stages.plugins.metrics.cmd:build_cmd",
            CmdParams,
            "GR-GAN's CMD and ITDis (paper and script forms)",
        ),
        "clip_score": ComponentSpec(
            "t2i_stages.plugins.metrics.clip_score:build_clip_score",
            ClipScoreParams,
            "CLIP score, local CLIP",
        ),
        "judges": ComponentSpec(
            "t2i_stages.plugins.metrics.judges:build_judges",
            JudgesParams,
            "R-precision and CMD in held-out judges' spaces (an ITM and a DAMSM), their spread",
        ),
        "attribute_accuracy": ComponentSpec(
            "t2i_stages.plugins.metrics.attribute_accuracy:build_attribute_accuracy",
            AttributeAccuracyParams,
            "shapes oracle's per-attribute accuracy against the captions (SOA analogue)",
        ),
    }
