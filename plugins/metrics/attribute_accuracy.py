"""Attribute accuracy on the built-in shapes dataset (this project's analogue of SOA).

The shapes oracle reads each generated image; every attribute the caption mentions is checked
against the caption's ground truth. ``all_mentioned`` is the share of images whose every mentioned
attribute of every object is right. ``shape+color+position`` is stricter on what it checks: the
share of images where every object has its shape, its colour and its grid cell right, whether or
not the caption mentions the position. The real test images are scored too (the oracle's
ceiling).

Streamed: each batch is read by the oracle and only its predictions (a few integers per object)
and the ground truth are kept; the scores are computed from them at the end.
"""

from __future__ import annotations

from typing import Any

import torch

from t2i_stages.plugin import (
    EvalBatch,
    EvalContext,
    MetricResult,
    StreamingMetric,
    T2IError,
    to_float,
)

from .common import dataset_oracle
from .params import AttributeAccuracyParams

ATTRIBUTES = ("shape", "color", "size", "fine", "position", "count")
COMBINED = "attr_acc[shape+color+position]"


def predict_images(oracle: Any, images_uint8: torch.Tensor) -> torch.Tensor:
    """The oracle's attribute rows (B, max_objects, 7) for uint8 images, 256 at a time."""
    preds = [
        oracle.predict(to_float(images_uint8[s : s + 256]))
        for s in range(0, len(images_uint8), 256)
    ]
    return torch.cat(preds)


def score_rows(oracle: Any, pred: torch.Tensor, attributes: Any, mentioned_only: bool) -> dict:
    """Per-attribute accuracies plus the combined shape+colour+position share."""
    from t2i_stages.plugins.datasets.shapes.oracle import objects_right, score_predictions

    out = score_predictions(pred, attributes, oracle.grid, mentioned_only)
    right = objects_right(pred, attributes, oracle.grid, ("shape", "color"), position=True)
    out["shape+color+position"] = float(right.mean()) if len(right) else float("nan")
    return out


def score_images(oracle: Any, images_uint8: Any, attributes: Any, mentioned_only: bool) -> dict:
    """Score uint8 images held in memory against their ground-truth attributes."""
    return score_rows(oracle, predict_images(oracle, images_uint8), attributes, mentioned_only)


class AttributeAccuracyMetric(StreamingMetric):
    """Keeps the oracle's reading of each image (a few integers per object), not the image."""

    name = "attribute_accuracy"

    def __init__(self, params: AttributeAccuracyParams):
        self.p = params

    def start(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.oracle = dataset_oracle(ctx)
        self.truth: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []

    def update(self, batch: EvalBatch) -> None:
        if batch.attributes is None:
            raise T2IError(
                "attribute_accuracy: no ground-truth attributes for these images (the dataset "
                "gives none, or given images have captions that are not their test image's)"
            )
        self.truth.append(batch.attributes)
        self.fake.append(predict_images(self.oracle, batch.fake))
        if self.p.real_reference:
            self.real.append(predict_images(self.oracle, batch.real))

    def finish(self) -> MetricResult:
        oracle, mentioned = self.oracle, self.p.mentioned_only
        truth = torch.cat(self.truth)
        fake = score_rows(oracle, torch.cat(self.fake), truth, mentioned)
        values = {"attr_acc[all_mentioned]": float(fake["all_mentioned"])}
        values.update({f"attr_acc[{a}]": float(fake[a]) for a in ATTRIBUTES if a in fake})
        values[COMBINED] = float(fake["shape+color+position"])
        details: dict[str, Any] = {"generated": fake}
        if self.p.real_reference:
            details["real_images"] = score_rows(oracle, torch.cat(self.real), truth, mentioned)
        self.truth, self.fake, self.real = [], [], []
        protocol = {
            "oracle": f"shapes oracle at {oracle.resolution} px, cell {oracle.cell_px} px",
            "oracle_info": getattr(oracle, "info", {}),
            "mentioned_only": self.p.mentioned_only,
            "ground_truth": "the attributes of the caption each image was generated from",
        }
        notes = {
            "attr_acc[all_mentioned]": "share of images with every mentioned attribute right",
            COMBINED: "share of images with every object's shape, colour and grid cell right "
            "(position checked even when the caption omits it)",
        }
        return MetricResult(values, protocol, details=details, notes=notes, better="higher")


def build_attribute_accuracy(
    params: AttributeAccuracyParams, **ctx: Any
) -> AttributeAccuracyMetric:
    return AttributeAccuracyMetric(params)
