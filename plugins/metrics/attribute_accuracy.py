"""Attribute accuracy on the built-in shapes dataset (this project's analogue of SOA).

The shapes oracle reads each generated image; every attribute the caption mentions is checked
against the caption's ground truth. ``all_mentioned`` is the share of images whose every mentioned
attribute of every object is right. The real test images are scored too (the oracle's ceiling).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from t2i_stages.errors import T2IError
from t2i_stages.evaluation.context import EvalContext, MetricResult
from t2i_stages.evaluation.samples import to_float
from t2i_stages.spec import Params

from .common import shapes_oracle

ATTRIBUTES = ("shape", "color", "size", "fine", "position", "count")


class AttributeAccuracyParams(Params):
    """Score generated shapes images with the dataset's oracle."""

    mentioned_only: bool = Field(
        True, description="Count only attributes the caption mentions (false: every attribute)."
    )
    real_reference: bool = Field(True, description="Also score the real test images.")


def score_images(oracle: Any, images_uint8: Any, attributes: Any, mentioned_only: bool) -> dict:
    from t2i_stages.plugins.datasets.oracle import score_predictions

    preds = [
        oracle.predict(to_float(images_uint8[s : s + 256]))
        for s in range(0, len(images_uint8), 256)
    ]
    import torch

    return score_predictions(torch.cat(preds), attributes, oracle.grid, mentioned_only)


class AttributeAccuracyMetric:
    name = "attribute_accuracy"

    def __init__(self, params: AttributeAccuracyParams):
        self.p = params

    def compute(self, ctx: EvalContext) -> MetricResult:
        s = ctx.samples
        if s.attributes is None:
            raise T2IError("attribute_accuracy: the dataset gives no ground-truth attributes")
        oracle = shapes_oracle(ctx)
        fake = score_images(oracle, s.fake, s.attributes, self.p.mentioned_only)
        values = {"attr_acc[all_mentioned]": float(fake["all_mentioned"])}
        values.update({f"attr_acc[{a}]": float(fake[a]) for a in ATTRIBUTES if a in fake})
        details: dict[str, Any] = {"generated": fake}
        if self.p.real_reference:
            details["real_images"] = score_images(
                oracle, s.real, s.attributes, self.p.mentioned_only
            )
        protocol = {
            "oracle": f"shapes oracle at {oracle.resolution} px, cell {oracle.cell_px} px",
            "oracle_info": getattr(oracle, "info", {}),
            "mentioned_only": self.p.mentioned_only,
            "ground_truth": "the attributes of the caption each image was generated from",
        }
        notes = {"attr_acc[all_mentioned]": "share of images with every mentioned attribute right"}
        return MetricResult(values, protocol, details=details, notes=notes)


def build_attribute_accuracy(
    params: AttributeAccuracyParams, **ctx: Any
) -> AttributeAccuracyMetric:
    return AttributeAccuracyMetric(params)
