"""The shapes oracle: scoring rules, and held-out accuracy on real renders (acceptance: >= 98%)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from t2i_stages.plugins.datasets.shapes import ShapesDataset, ShapesParams
from t2i_stages.plugins.datasets.shapes.oracle import (
    ORACLE_HOLDOUT_SPLIT,
    load_oracle,
    render_set,
    score_predictions,
)

ATTRS = ("shape", "color", "size", "fine", "position")


def _rows(*objects, mentions=None):
    """Attribute rows (3, 14) from (shape, color, size, row, col, fine) tuples."""
    t = torch.full((3, 14), -1, dtype=torch.int64)
    t[:, 0] = 0
    for k, (shape, color, size, row, col, fine) in enumerate(objects):
        t[k, :7] = torch.tensor([1, shape, color, size, row, col, fine])
        t[k, 7:] = torch.tensor(mentions[k] if mentions else [1, 1, 1, 1, -1, -1, 1])
    return t


def test_score_rules():
    gt = _rows((0, 1, 2, 0, 0, 1), (4, 5, 0, 2, 2, 0)).unsqueeze(0)
    perfect = score_predictions(gt[:, :, :7], gt, grid=3)
    assert all(perfect[a] == 1.0 for a in (*ATTRS, "count", "all_mentioned"))
    wrong_colour = gt[:, :, :7].clone()
    wrong_colour[0, 1, 2] = 3
    s = score_predictions(wrong_colour, gt, grid=3)
    assert s["color"] == 0.5 and s["shape"] == 1.0 and s["all_mentioned"] == 0.0
    # an unmentioned colour does not count
    unmentioned = _rows(
        (0, 1, 2, 0, 0, 1),
        (4, 5, 0, 2, 2, 0),
        mentions=[[1, 1, 1, 1, -1, -1, 1], [1, 0, 1, 1, -1, -1, 1]],
    )
    s = score_predictions(wrong_colour, unmentioned.unsqueeze(0), grid=3)
    assert s["color"] == 1.0 and s["all_mentioned"] == 1.0
    # an object found in the wrong cell keeps its attributes but loses its position
    moved = gt[:, :, :7].clone()
    moved[0, 1, 4:6] = torch.tensor([1, 2])
    s = score_predictions(moved, gt, grid=3)
    assert s["position"] == 0.5 and s["shape"] == 1.0 and s["count"] == 1.0
    # a relation mention is right when the relation holds between the predicted cells
    rel = _rows(
        (0, 1, 2, 0, 0, 1),
        (4, 5, 0, 2, 2, 0),
        mentions=[[1, 1, 1, 2, 0, 1, 1], [1, 1, 1, 0, -1, -1, 1]],
    )
    assert score_predictions(moved, rel.unsqueeze(0), grid=3)["position"] == 1.0
    flipped = gt[:, :, :7].clone()
    flipped[0, 0, 4], flipped[0, 1, 4] = 2, 0
    assert score_predictions(flipped, rel.unsqueeze(0), grid=3)["position"] == 0.0
    missing = gt[:, :, :7].clone()
    missing[0, 1] = torch.tensor([0, -1, -1, -1, -1, -1, -1])
    s = score_predictions(missing, gt, grid=3)
    assert s["count"] == 0.0 and s["shape"] == 0.5
    never = _rows((0, 1, 2, 0, 0, 1), mentions=[[1, 0, 0, 0, -1, -1, 0]])
    assert math.isnan(score_predictions(never[None, :, :7], never[None], grid=3)["color"])


@pytest.fixture(scope="module")
def default_oracle(tmp_path_factory):
    """The oracle for the default dataset params, judging 128 px images (trained once, cached)."""
    p = ShapesParams(cache_dir=str(tmp_path_factory.mktemp("oracle-cache")))
    t0 = time.perf_counter()
    oracle = load_oracle(p, resolution=128)
    return p, oracle, time.perf_counter() - t0


def test_default_oracle_reads_held_out_renders(default_oracle):
    p, oracle, seconds = default_oracle
    images, objects = render_set(p, ORACLE_HOLDOUT_SPLIT, 300, 128, start=1000)  # unseen scenes
    acc = oracle.score(images.float() / 127.5 - 1, objects)
    assert all(acc[a] >= 0.98 for a in ATTRS), acc
    assert acc["count"] >= 0.99
    # robust to the kind of damage generated images show: noise and blur
    noisy = (
        images.float() / 127.5
        - 1
        + 0.08 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    )
    noisy = torch.nn.functional.avg_pool2d(noisy, 3, 1, 1, count_include_pad=False)
    acc_noisy = oracle.score(noisy.clamp(-1, 1), objects)
    assert all(acc_noisy[a] >= 0.9 for a in ATTRS), acc_noisy
    print(f"default oracle (128 px) trained in {seconds:.1f}s; held-out {acc}; noisy {acc_noisy}")


def test_oracle_is_cached_and_scores_dataset_batches(default_oracle, tmp_path):
    p, oracle, _ = default_oracle
    t0 = time.perf_counter()
    again = load_oracle(p, resolution=128)
    assert time.perf_counter() - t0 < 5
    ds = ShapesDataset(
        p.model_copy(update={"train_size": 16, "test_size": 16}),
        "test",
        resolutions=[64, 128],
        quiet=True,
    )
    batch = ds.collate([ds[i] for i in range(16)])
    pred = again.predict(batch["images"][1])
    assert pred.shape == (16, p.max_objects, 7)
    assert torch.equal(pred, oracle.predict(batch["images"][1]))
    score = again.score(batch["images"][1], batch["attributes"])
    assert score["all_mentioned"] >= 0.8 and score["n_images"] == 16
    # images of another size are resized to the oracle's resolution
    assert (
        again.predict(torch.nn.functional.interpolate(batch["images"][1], size=256)).shape
        == pred.shape
    )


def test_demo_setting_oracle_at_64px(tmp_path):
    p = ShapesParams(
        max_objects=1,
        grid=1,
        sizes=["large"],
        background="plain",
        object_scale=1.15,
        resolutions=[32, 64],
        cache_dir=str(tmp_path),
    )
    oracle = load_oracle(p)
    assert oracle.resolution == 64
    images, objects = render_set(p, ORACLE_HOLDOUT_SPLIT, 200, 64, start=500)
    acc = oracle.score(images.float() / 127.5 - 1, objects)
    assert all(acc[a] >= 0.98 for a in ATTRS), acc
    assert oracle.info["holdout"]["shape"] >= 0.98
    blank = torch.zeros(4, 3, 64, 64) + (200 / 127.5 - 1)  # the plain background, no object
    assert (oracle.predict(blank)[:, :, 0] == 0).all()


def test_an_oracle_trained_in_bf16_is_cached_apart_from_the_fp32_one(tmp_path):
    from t2i_stages.plugins.datasets.shapes.oracle import oracle_artefact

    p = ShapesParams(cache_dir=str(tmp_path))
    fp32 = oracle_artefact(p, 32, 8)
    # cache_dir replaces $T2I_STAGES_HOME/cache
    assert fp32.path.parent == tmp_path / "shapes-oracle"
    assert oracle_artefact(p, 32, 8, precision="bf16").path != fp32.path
    assert oracle_artefact(p, 32, 8).path == fp32.path
