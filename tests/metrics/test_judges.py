"""Fair judges (issue 21): held-out ITM and DAMSM judges that are never the run's own matcher,
FD[oracle] beside its real-vs-real floor, and the per-object accuracy, all in metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2i_stages.errors import T2IError
from t2i_stages.evaluation import EvalContext, evaluate_stream, stream_from_real
from t2i_stages.evaluation.slots import build_metrics, make_slot
from t2i_stages.plugins.datasets.shapes import ShapesDataset, ShapesParams
from t2i_stages.recipe.sources import read_recipe

REPO = Path(__file__).resolve().parents[2]
PRETRAIN = {"steps": 3, "batch_size": 8, "eval_samples": 16, "candidates": 8, "folds": 2}
MICRO_ITM = {
    "scratch": {
        "image_size": 32,
        "patch_size": 8,
        "vision_width": 32,
        "text_width": 32,
        "vision_heads": 2,
        "text_heads": 2,
        "vision_layers": 1,
        "text_layers": 1,
        "projection_dim": 16,
    },
    "pretrain": {**PRETRAIN, "precision": "fp32"},
}
MICRO_DAMSM = {
    "text_dim": 16,
    "embedding_dim": 16,
    "small_cnn": {"image_size": 32, "width": 8},
    "pretrain": {**PRETRAIN, "precision": "fp32"},
}


def micro_judges(itm_seed: int = 1001, damsm_seed: int = 1002) -> dict:
    return {
        "judges": [
            {"name": "itm", "seed": itm_seed, "matcher": {"type": "itm", "params": MICRO_ITM}},
            {
                "name": "damsm",
                "seed": damsm_seed,
                "matcher": {"type": "damsm", "params": MICRO_DAMSM},
            },
        ],
        "candidates": 8,
        "folds": 2,
    }


@pytest.fixture(scope="module")
def splits():
    """The shapes-hard preset at 64 px, 80 train and 60 test images (session cache)."""
    params = dict(
        read_recipe(REPO / "recipes/base/shapes-hard.yaml").data["data"]["dataset"]["params"]
    )
    p = ShapesParams(
        **{**params, "train_size": 80, "test_size": 60, "resolutions": [64], "workers": 1}
    )
    return ShapesDataset(p, "train", quiet=True), ShapesDataset(p, "test", quiet=True)


def family_recipe(registry, seed: int):
    from t2i_stages.recipe import load_recipe

    return load_recipe(REPO / "recipes/shapes-hard/grgan.yaml", [f"seed={seed}"], registry)


@pytest.fixture(scope="module")
def quick_oracle(splits):
    """A briefly trained oracle for these params at 64 px: the fields, not its accuracy, are
    tested here (tests/datasets/test_shapes_hard.py checks the real oracle's)."""
    from t2i_stages.plugins.datasets.shapes.oracle import train_oracle

    return train_oracle(splits[1].params, 64, train_images=200, epochs=1, holdout_images=8)


def context(
    registry, splits, recipe=None, matcher=None, batch_size: int = 20, oracle=None
) -> EvalContext:
    train, test = splits
    ctx = EvalContext(
        registry=registry,
        device=torch.device("cpu"),
        recipe=recipe,
        test_data=test,
        matcher=matcher,
        train_data_fn=lambda: train,
        batch_size=batch_size,
        log=lambda m: None,
    )
    if oracle is not None:  # what dataset_oracle(ctx) would train, given instead
        ctx.cache["oracle:64"] = oracle
    return ctx


@pytest.fixture(scope="module")
def report(registry, splits, quick_oracle, tmp_path_factory):
    """The real test images scored as if generated: oracle, FD[oracle] with its floor, judges."""
    out = tmp_path_factory.mktemp("judges-eval")
    slots = [
        make_slot("attribute_accuracy", {}, registry),
        make_slot("fid", {"extractor": "oracle", "kid": False, "floor": True}, registry),
        make_slot("judges", micro_judges(), registry),
    ]
    ctx = context(registry, splits, family_recipe(registry, 3), oracle=quick_oracle)
    built = build_metrics(slots, registry, ctx.device)
    evaluate_stream(ctx, built, stream_from_real(splits[1], 40, 20), out_dir=out)
    return json.loads((out / "metrics.json").read_text(encoding="utf-8")), ctx


def test_metrics_json_holds_judges_floor_and_per_object_accuracy(report):
    metrics, _ = report
    res = metrics["results"]
    judges = res["judges"]["values"]
    for name in ("itm", "damsm"):
        assert 0.0 <= judges[f"R-precision[judge_{name}]"] <= 1.0
        assert np.isfinite(judges[f"CMD[judge_{name}]"])
        assert f"R-precision[judge_{name}]" in res["judges"]["details"]["real_images"]
    spread = abs(judges["R-precision[judge_itm]"] - judges["R-precision[judge_damsm]"])
    assert judges["R-precision spread[judges]"] == pytest.approx(spread)
    cmd_spread = abs(judges["CMD[judge_itm]"] - judges["CMD[judge_damsm]"])
    assert judges["CMD spread[judges]"] == pytest.approx(cmd_spread)
    fid = res["fid"]
    assert "FD[oracle]" in fid["values"] and fid["values"]["FD[oracle] floor"] > 0
    assert fid["protocol"]["floor"]["n"] == 40
    acc = res["attribute_accuracy"]
    for attr in ("shape", "color", "size", "fine", "position", "all"):
        assert 0.0 <= acc["values"][f"obj_acc[{attr}]"] <= 1.0
        assert f"obj_acc[{attr}]" in acc["details"]["real_images"]
    assert 0.0 <= acc["values"]["attr_acc[all_correct]"] <= acc["values"]["obj_acc[all]"]
    assert "grid cell" in res["attribute_accuracy"]["protocol"]["pairing"]
    names = {row["name"] for row in metrics["table"]}
    assert {"attr_acc[all_correct]", "FD[oracle] floor", "CMD spread[judges]"} <= names


def test_each_judge_has_its_own_seed_and_a_judge_cache_key(report, registry, splits):
    """Same matcher config and seed, pretrained as a training run would: another cache entry."""
    from t2i_stages.plugins.matchers.pretrain import pretrain_matcher
    from t2i_stages.recipe import resolved_recipe

    metrics, _ = report
    info = metrics["results"]["judges"]["protocol"]["judges"]
    assert info["itm"]["seed"] == 1001 and info["damsm"]["seed"] == 1002
    assert info["itm"]["run_matcher_seed"] == 3
    assert info["itm"]["cache_key"] != info["damsm"]["cache_key"]
    train, test = splits
    recipe = family_recipe(registry, 1001)
    as_training = pretrain_matcher(
        ("itm", MICRO_ITM),
        train,
        test,
        registry=registry,
        dataset_key=resolved_recipe(recipe, registry)["data"]["dataset"],
        seed=1001,
        log=lambda m: None,
    )
    assert as_training.key != info["itm"]["cache_key"]
    assert str(as_training.path) != info["itm"]["cache"]


def test_a_judge_with_the_run_matchers_seed_is_refused(registry, splits):
    ctx = context(registry, splits, family_recipe(registry, 1002))
    built = build_metrics([make_slot("judges", micro_judges(), registry)], registry, ctx.device)
    with pytest.raises(T2IError, match="judge 'damsm' has seed 1002, the seed the run's own"):
        built[0][2].start(ctx)


def test_a_judge_with_the_run_matchers_weights_is_refused(report, registry, splits):
    """A run whose matcher *is* a judge (same weights) cannot be judged by it."""
    from t2i_stages.plugins.metrics.judges import judge_encoder

    _, ctx = report
    spec = make_slot("judges", micro_judges(), registry).resolved.judges[0]
    enc, _ = judge_encoder(ctx, spec)  # the judge the evaluation above pretrained
    other = context(registry, splits, family_recipe(registry, 7), matcher=enc.matcher)
    other.resolution = 64  # what the stream's first batch sets
    with pytest.raises(T2IError, match="run's own matcher's weights"):
        judge_encoder(other, spec)


def test_judges_need_distinct_seeds_and_names(registry):
    with pytest.raises(T2IError, match="seed 5 is given twice"):
        make_slot("judges", micro_judges(5, 5), registry)


def test_a_held_out_matcher_with_the_run_seed_is_refused(registry, splits):
    from t2i_stages.plugins.metrics.common import build_joint
    from t2i_stages.plugins.metrics.params import HeldOutParams

    ctx = context(registry, splits, family_recipe(registry, 1))
    with pytest.raises(T2IError, match="held_out_seed 1 is the seed the run's own matcher"):
        build_joint(ctx, "held_out", held_out=HeldOutParams(held_out_seed=1))


def test_the_floor_is_the_first_n_train_images_against_the_first_n_test_images(registry, splits):
    """FD[random] floor equals an independent computation on the right splits and count, and
    is cached per sample count."""
    from t2i_stages.evaluation import GaussianStats, frechet_distance
    from t2i_stages.plugin import random_extractor

    train, test = splits

    def run(n: int) -> dict:
        slot = make_slot("fid", {"extractor": "random", "kid": False, "floor": True}, registry)
        built = build_metrics([slot], registry, torch.device("cpu"))
        rep = evaluate_stream(context(registry, splits), built, stream_from_real(test, n, 10))
        return rep["results"]["fid"]

    first, again, fewer = run(30), run(30), run(20)
    ex = random_extractor()

    def feats(ds, idx) -> np.ndarray:
        imgs = torch.from_numpy(np.stack([ds.images_uint8(i, 64) for i in idx]))
        return ex.features(imgs.permute(0, 3, 1, 2).contiguous(), 16)

    def fd(a, b) -> float:
        ga, gb = GaussianStats.from_features(a), GaussianStats.from_features(b)
        return frechet_distance(ga.mu, ga.sigma, gb.mu, gb.sigma)

    expected = fd(feats(train, range(30)), feats(test, range(30)))
    assert first["values"]["FD[random] floor"] == pytest.approx(expected, rel=1e-6)
    # not the test split against itself, nor later train images
    assert abs(expected - fd(feats(train, range(30, 60)), feats(test, range(30)))) > 1e-6
    assert first["protocol"]["floor"]["n"] == 30 and not first["protocol"]["floor"]["cached"]
    assert again["protocol"]["floor"]["cached"]
    assert again["values"]["FD[random] floor"] == first["values"]["FD[random] floor"]
    assert fewer["protocol"]["floor"]["n"] == 20 and not fewer["protocol"]["floor"]["cached"]
    assert fewer["values"]["FD[random] floor"] != first["values"]["FD[random] floor"]
    assert first["details"]["real_images"] == {"FD[random]": first["values"]["FD[random] floor"]}


def test_the_report_shows_a_values_own_real_baseline_first():
    from t2i_stages.training.report import real_baseline

    res = {
        "values": {"attr_acc[shape]": 0.5, "obj_acc[shape]": 0.4},
        "details": {"real_images": {"shape": 0.99, "obj_acc[shape]": 0.97}},
    }
    assert real_baseline(res, "obj_acc[shape]") == 0.97
    assert real_baseline(res, "attr_acc[shape]") == 0.99
