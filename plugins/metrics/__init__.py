"""Built-in metrics: FID/KID, IS, R-precision, CMD/ITDis, CLIP score, attribute accuracy.

Each factory returns an object with ``name`` and ``compute(ctx: EvalContext) -> MetricResult``
(``t2i_stages.evaluation.context``); ``t2i_stages.evaluation.evaluate`` runs them.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .attribute_accuracy import AttributeAccuracyParams, build_attribute_accuracy
from .clip_score import ClipScoreParams, build_clip_score
from .cmd import CmdParams, build_cmd
from .fid import FidParams, KidParams, build_fid, build_kid
from .inception_score import InceptionScoreParams, build_inception_score
from .r_precision import RPrecisionParams, build_r_precision


@hookimpl
def t2i_stages_metrics() -> dict[str, ComponentSpec]:
    return {
        "fid": ComponentSpec(
            build_fid, FidParams, "FID/KID via clean-fid (or FD/KD in an in-domain feature space)"
        ),
        "kid": ComponentSpec(build_kid, KidParams, "KID via clean-fid (or KD in another space)"),
        "inception_score": ComponentSpec(
            build_inception_score, InceptionScoreParams, "Inception Score, 10 splits, mean ± std"
        ),
        "r_precision": ComponentSpec(
            build_r_precision, RPrecisionParams, "R-precision, 1 true caption among 100, folds"
        ),
        "cmd": ComponentSpec(
            build_cmd, CmdParams, "GR-GAN's CMD and ITDis (paper and script forms)"
        ),
        "clip_score": ComponentSpec(build_clip_score, ClipScoreParams, "CLIP score, local CLIP"),
        "attribute_accuracy": ComponentSpec(
            build_attribute_accuracy,
            AttributeAccuracyParams,
            "shapes oracle's per-attribute accuracy against the captions (SOA analogue)",
        ),
    }
