"""Attribute accuracy on the built-in shapes dataset (this project's analogue of SOA).

The shapes oracle reads each generated image; every attribute the caption mentions is checked
against the caption's ground truth. ``all_mentioned`` is the share of images whose every mentioned
attribute of every object is right. ``shape+color+position`` is stricter on what it checks: the
share of images where every object has its shape, its colour and its grid cell right, whether or
not the caption mentions the position. The real test images are scored too (the oracle's
ceiling).

Streamed: each batch is read by the oracle and only its predictions (a few integers per object)
and the ground truth are kept; the scores are computed from them at the end.

Beside the caption-mention scores, every object of every scene is scored on every attribute
(``obj_acc[shape/color/size/fine/position]``, ``obj_acc[all]`` per object and
``attr_acc[all_correct]`` per image: the count right and every object wholly right), whatever
the caption mentions: on a preset whose captions mention everything (``shapes-hard``) the two
agree, elsewhere the strict values also judge what the caption left open. Generated objects are
paired with the caption's objects by grid cell (``oracle.score_objects``).
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
ALL_CORRECT = "attr_acc[all_correct]"
PAIRING = (
    "each caption object is paired with the generated object the oracle finds in the same grid "
    "cell; one with none there takes the unpaired generated object agreeing on most attributes "
    "(then the nearest cell), so its position is wrong; one with no generated object left is "
    "wrong on every attribute; generated objects beyond the caption's fail the count (and "
    "attr_acc[all_correct])"
)


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


def strict_values(oracle: Any, pred: torch.Tensor, attributes: Any) -> dict[str, float]:
    """Every attribute of every object (``obj_acc[...]``) and the all-correct image share."""
    from t2i_stages.plugins.datasets.shapes.oracle import OBJECT_ATTRS, score_objects

    s = score_objects(pred, attributes, oracle.grid)
    out = {f"obj_acc[{a}]": float(s[a]) for a in (*OBJECT_ATTRS, "all")}
    out[ALL_CORRECT] = float(s["all_correct"])
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
        values.update(strict_values(oracle, torch.cat(self.fake), truth))
        details: dict[str, Any] = {"generated": fake}
        if self.p.real_reference:
            real = torch.cat(self.real)
            details["real_images"] = score_rows(oracle, real, truth, mentioned)
            details["real_images"].update(strict_values(oracle, real, truth))
        self.truth, self.fake, self.real = [], [], []
        protocol = {
            "oracle": f"shapes oracle at {oracle.resolution} px, cell {oracle.cell_px} px",
            "oracle_info": getattr(oracle, "info", {}),
            "mentioned_only": self.p.mentioned_only,
            "ground_truth": "the attributes of the caption each image was generated from",
            "pairing": PAIRING,
        }
        notes = {
            "attr_acc[all_mentioned]": "share of images with every mentioned attribute right",
            COMBINED: "share of images with every object's shape, colour and grid cell right "
            "(position checked even when the caption omits it)",
            ALL_CORRECT: "share of images with the object count right and every object's shape, "
            "colour, size, fine detail and grid cell right (mentioned or not)",
            "obj_acc[all]": "share of objects with all five attributes right",
        }
        return MetricResult(values, protocol, details=details, notes=notes, better="higher")


def build_attribute_accuracy(
    params: AttributeAccuracyParams, **ctx: Any
) -> AttributeAccuracyMetric:
    return AttributeAccuracyMetric(params)
