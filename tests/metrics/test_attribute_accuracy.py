"""Attribute accuracy: real renders are read right; renders scored against shuffled captions are not."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.evaluation import EvalContext, samples_from_real
from t2i_stages.evaluation.runner import build_metrics, make_slot

EASY = {
    "max_objects": 1,
    "grid": 1,
    "sizes": ["large"],
    "background": "plain",
    "resolutions": [32],
    "train_size": 16,
    "test_size": 300,
    "workers": 1,
}


@pytest.fixture(scope="module")
def scored(registry, tmp_path_factory):
    from t2i_stages.recipe.slots import DatasetSlot

    slot = DatasetSlot(
        type="shapes", params=dict(EASY, cache_dir=str(tmp_path_factory.mktemp("s")))
    )
    test = registry.build("dataset", slot, split="test", resolutions=[32])
    samples = samples_from_real(test, 300, batch_size=100)
    metric = build_metrics([make_slot("attribute_accuracy", {}, registry)], registry, "cpu")[0][2]
    ctx = EvalContext(samples, registry, torch.device("cpu"), test_data=test, log=lambda m: None)
    real = metric.compute(ctx)
    shuffled = samples.attributes.roll(1, dims=0)  # each image judged against another's caption
    ctx.samples.attributes = shuffled
    return real, metric.compute(ctx), test


def test_real_renders_score_at_least_098(scored):
    real, _, _ = scored
    v = real.values
    assert v["attr_acc[all_mentioned]"] >= 0.98
    for name in ("shape", "color", "size"):
        assert v[f"attr_acc[{name}]"] >= 0.98
    assert "oracle" in real.protocol and real.details["real_images"]["all_mentioned"] >= 0.98


def test_shuffled_captions_score_near_chance(scored):
    _, shuffled, test = scored
    v = shuffled.values
    n_shapes, n_colors = len(test.params.shapes), len(test.params.colors)
    assert v["attr_acc[shape]"] < 1.0 / n_shapes + 0.12
    assert v["attr_acc[color]"] < 1.0 / n_colors + 0.12
    assert v["attr_acc[all_mentioned]"] < 0.15
