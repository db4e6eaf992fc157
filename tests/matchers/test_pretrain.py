"""Matcher pretraining: R-precision protocol, learning, and the content-addressed cache."""

from __future__ import annotations

import json

import pytest
import torch
from matcher_data import TinyCaptioned

from t2i_stages.errors import T2IError
from t2i_stages.plugins.common.retrieval import retrieval_r_precision
from t2i_stages.plugins.matchers.pretrain import (
    PretrainParams,
    dataset_fingerprint,
    load_matcher_weights,
    lr_factor,
    matcher_cache_payload,
    pretrain_matcher,
)


def matcher_cache_key(*args, **kwargs) -> str:
    from t2i_stages.artefacts import key_digest

    return key_digest(matcher_cache_payload(*args, **kwargs))


DAMSM = (
    "damsm",
    {"text_dim": 32, "embedding_dim": 16, "small_cnn": {"image_size": 16, "width": 8}},
)
QUICK = dict(
    batch_size=16, lr=3e-3, max_minutes=None, eval_samples=32, candidates=8, folds=2, warmup_steps=5
)


def test_lr_schedule_warms_up_then_decays_over_steps_or_the_time_budget():
    const = PretrainParams(warmup_steps=4, steps=100)
    assert [lr_factor(const, s, 0.0, 60.0) for s in (0, 3, 99)] == [0.25, 1.0, 1.0]
    cos = PretrainParams(warmup_steps=0, steps=100, schedule="cosine")
    assert lr_factor(cos, 0, 0.0, 60.0) == 1.0
    assert lr_factor(cos, 50, 0.0, 60.0) == pytest.approx(0.5)  # half the steps
    assert lr_factor(cos, 10, 30.0, 60.0) == pytest.approx(0.5)  # half the time budget first
    assert lr_factor(cos, 10, 90.0, 60.0) == pytest.approx(0.0)  # past the budget
    assert lr_factor(cos, 50, 1e9, float("inf")) == pytest.approx(0.5)  # no time cap


def test_r_precision_known_cases():
    feats = torch.eye(20)
    assert retrieval_r_precision(feats, feats, candidates=10).mean == 1.0
    # every sentence identical: the true one is never strictly first
    assert retrieval_r_precision(feats, torch.ones(20, 20), candidates=10).mean == 0.0
    # sentences of the next image: always beaten when that image is among the candidates
    shifted = feats.roll(1, 0)
    r = retrieval_r_precision(feats, shifted, candidates=20, folds=4)
    assert r.mean == 0.0 and r.samples == 20 and r.folds == 4 and r.candidates == 20


def test_r_precision_draws_distractors_from_other_classes():
    codes = torch.eye(8)
    sents = codes.clone()
    sents[1] = codes[0]  # image 0's caption is duplicated at image 1 ...
    ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])  # ... which has the same class: never a distractor
    r = retrieval_r_precision(codes, sents, ids, candidates=8, seed=0)
    assert r.mean == pytest.approx(7 / 8)  # only image 1 misses (its caption fits image 0)
    no_classes = retrieval_r_precision(codes, sents, None, candidates=8, seed=0)
    assert no_classes.mean < r.mean  # image 0 now meets the duplicate and loses the tie


def test_pretraining_learns_and_caches(tmp_path, tiny_data):
    train, test = tiny_data
    params = PretrainParams(steps=60, **QUICK)
    logs: list[str] = []
    first = pretrain_matcher(
        DAMSM, train, test, params, cache_root=tmp_path, seed=0, log=logs.append
    )
    assert not first.from_cache and first.steps == 60
    assert first.r_precision.mean >= 0.9  # 16 easy classes, 1 true among 8
    assert first.matcher.trained and not first.matcher.training
    files = sorted(p.name for p in first.path.iterdir())
    assert files == [
        "artefact.json",
        "config.json",
        "matcher.safetensors",
    ]  # marker: published whole
    config = json.loads((first.path / "config.json").read_text())
    assert config["key"] == first.key and config["steps"] == 60 and config["seed"] == 0
    assert config["r_precision"]["mean"] == first.r_precision.mean
    assert any("R-precision" in line for line in logs)

    again = pretrain_matcher(
        DAMSM, train, test, params, cache_root=tmp_path, seed=0, log=logs.append
    )
    assert again.from_cache and again.key == first.key
    assert again.r_precision.mean == first.r_precision.mean
    for (n, a), (_, b) in zip(
        first.matcher.state_dict().items(), again.matcher.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n

    # the same inputs train the same weights (initialisation is seeded too)
    forced = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, seed=0, force=True)
    for (n, a), (_, b) in zip(
        first.matcher.state_dict().items(), forced.matcher.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n

    # anything that determines the weights changes the key
    other_seed = matcher_cache_key("damsm", DAMSM[1], {"d": 1}, params, seed=1)
    assert other_seed != matcher_cache_key("damsm", DAMSM[1], {"d": 1}, params, seed=0)
    assert matcher_cache_key("damsm", DAMSM[1], {"d": 2}, params, seed=0) != matcher_cache_key(
        "damsm", DAMSM[1], {"d": 1}, params, seed=0
    )
    assert matcher_cache_key("damsm", DAMSM[1], {"d": 1}, PretrainParams(steps=61, **QUICK), 0) != (
        matcher_cache_key("damsm", DAMSM[1], {"d": 1}, params, 0)
    )
    # logging frequency does not
    assert matcher_cache_key(
        "damsm", DAMSM[1], {"d": 1}, PretrainParams(steps=60, log_every=7, **QUICK), 0
    ) == (matcher_cache_key("damsm", DAMSM[1], {"d": 1}, params, 0))


def test_pretrain_params_from_the_matcher_and_weights_file(tmp_path, tiny_data):
    train, test = tiny_data
    mparams = dict(DAMSM[1], pretrain=dict(steps=3, **QUICK))
    res = pretrain_matcher(("damsm", mparams), train, test, cache_root=tmp_path)
    assert res.steps == 3
    # a recipe can point at trained weights instead of pretraining
    weights = res.path / "matcher.safetensors"
    mparams2 = dict(DAMSM[1], pretrain={"weights": str(weights)})
    loaded = pretrain_matcher(("damsm", mparams2), train, test, cache_root=tmp_path / "other")
    assert loaded.from_cache and loaded.steps == 0 and loaded.matcher.trained
    assert not (tmp_path / "other").exists()
    # pretraining can be switched off in the recipe
    off = pretrain_matcher(
        ("damsm", dict(DAMSM[1], pretrain={"enabled": False})),
        train,
        test,
        cache_root=tmp_path / "x",
    )
    assert off.steps == 0 and off.r_precision is None and not off.matcher.trained
    assert not (tmp_path / "x").exists()
    # weights that do not fit are a clear error
    with pytest.raises(T2IError, match="does not fit"):
        pretrain_matcher(("damsm", dict(mparams2, text_dim=16)), train, test, cache_root=tmp_path)


def test_itm_scratch_pretrains_on_word_ids(tmp_path, tiny_data):
    train, test = tiny_data
    itm = {
        "scratch": {
            "text_width": 32, "text_layers": 1, "text_heads": 2, "vision_width": 32, "vision_layers": 1,
            "vision_heads": 2, "image_size": 16, "patch_size": 4, "projection_dim": 32, "max_words": 8,
        }
    }  # fmt: skip
    res = pretrain_matcher(
        ("itm", itm), train, test, PretrainParams(steps=20, **QUICK), cache_root=tmp_path
    )
    assert 0.0 <= res.r_precision.mean <= 1.0 and res.steps == 20
    # its cached weights load into a fresh model
    fresh = pretrain_matcher(
        ("itm", itm), train, test, PretrainParams(steps=20, **QUICK), cache_root=tmp_path
    )
    assert fresh.from_cache


def test_fast_itm_settings_learn(tmp_path, tiny_data):
    """The benchmark's from-scratch ITM settings (conv stem, one layer per tower, mean+max image
    code, mean text, large gamma3, cosine decay) train on the tiny data."""
    train, test = tiny_data
    fast = (
        "itm",
        {
            "scratch": {
                "text_width": 32, "text_layers": 1, "text_heads": 2, "vision_width": 32,
                "vision_layers": 1, "vision_heads": 2, "image_size": 16, "patch_size": 4,
                "patch_stem": "conv", "stem_width": 8, "projection_dim": 32, "max_words": 8,
            },
            "image_pool": "avgmax",
            "text_pool": "mean",
            "region_grad": False,
        },
    )  # fmt: skip
    params = PretrainParams(
        steps=60,
        word_batch=4,
        word_grad=False,
        betas=(0.9, 0.999),
        gamma3=40.0,
        schedule="cosine",
        **{**QUICK, "lr": 1e-3},
    )
    res = pretrain_matcher(fast, train, test, params, cache_root=tmp_path, seed=0)
    assert res.steps == 60 and res.r_precision.mean >= 0.9


def test_load_rejects_unknown_files(tmp_path, tiny_data):
    train, _ = tiny_data
    with pytest.raises(T2IError, match="not found"):
        from t2i_stages.plugins.matchers.damsm import DamsmMatcher, DamsmParams

        load_matcher_weights(DamsmMatcher(DamsmParams(), 12), tmp_path / "nope.safetensors")
    fp = dataset_fingerprint(train)
    assert fp["len"] == 64 and len(fp["captions_sha256"]) == 64
    assert (
        dataset_fingerprint(TinyCaptioned(64, offset=1))["captions_sha256"] != fp["captions_sha256"]
    )


def test_fast_damsm_settings_learn(tmp_path, tiny_data):
    """The benchmark's from-scratch DAMSM settings (pooled CNN, mean sentence, region
    stop-gradient, word loss on a sub-batch) train on the tiny data as well as the defaults."""
    train, test = tiny_data
    fast = (
        "damsm",
        {
            "text_dim": 32,
            "embedding_dim": 16,
            "sentence": "mean",
            "dropout": 0.0,
            "small_cnn": {
                "image_size": 16, "width": 8, "arch": "pooled", "code_pool": "avgmax",
                "region_grad": False,
            },
        },
    )  # fmt: skip
    params = PretrainParams(steps=60, word_batch=4, word_grad=False, betas=(0.9, 0.999), **QUICK)
    res = pretrain_matcher(fast, train, test, params, cache_root=tmp_path, seed=0)
    assert res.steps == 60 and res.r_precision.mean >= 0.9
    with pytest.raises(ValueError):
        PretrainParams(word_batch=1)


def test_a_time_capped_pretraining_is_never_cached_as_complete(tmp_path, tiny_data):
    train, test = tiny_data
    params = PretrainParams(steps=12, **{**QUICK, "max_minutes": 1e-6})  # one step per call
    logs: list[str] = []
    first = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, log=logs.append)
    assert first.steps < 12 and not first.complete and first.how == "trained"
    config = json.loads((first.path / "config.json").read_text())
    assert config["complete"] is False and config["stopped_by"] == "max_minutes"
    assert config["steps"] == first.steps and config["target_steps"] == 12
    assert config["r_precision"]["mean"] == first.r_precision.mean
    assert any("cached as incomplete" in line for line in logs)

    second = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, log=logs.append)
    assert not second.from_cache and second.how == "continued"
    assert second.steps > first.steps and second.key == first.key
    assert any(
        f"after {first.steps} of 12 steps" in line and "continuing it" in line for line in logs
    )

    result = second
    for _ in range(12):
        if result.complete:
            break
        result = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, log=logs.append)
    assert result.complete and result.steps == 12
    assert not (result.path / "optimizer.pt").exists()  # a finished entry keeps no optimizer
    done = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, log=logs.append)
    assert done.from_cache and done.how == "loaded" and done.steps == 12


def test_an_incomplete_entry_that_cannot_continue_is_retrained(tmp_path, tiny_data):
    train, test = tiny_data
    params = PretrainParams(steps=12, **{**QUICK, "max_minutes": 1e-6})
    first = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path)
    (first.path / "optimizer.pt").write_bytes(b"damaged")
    logs: list[str] = []
    again = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path, log=logs.append)
    assert again.how == "trained" and any("retraining it" in line for line in logs)


def test_the_cache_key_holds_the_resolved_precision(tmp_path, tiny_data, monkeypatch):
    from t2i_stages import hardware

    train, test = tiny_data
    params = PretrainParams(steps=0, **QUICK)  # no step runs: bf16 never reaches oneDNN here
    avx2 = hardware.CpuInfo(flags=frozenset({"avx2"}), aten_capability="AVX2")
    amx = hardware.CpuInfo(
        flags=frozenset({"avx512f", "amx_bf16"}), aten_capability="AVX512", onednn_bf16=True
    )
    monkeypatch.setattr(hardware, "cpu_info", lambda: avx2)
    fp32 = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path)
    monkeypatch.setattr(hardware, "cpu_info", lambda: amx)
    bf16 = pretrain_matcher(DAMSM, train, test, params, cache_root=tmp_path)
    assert fp32.key != bf16.key and not bf16.from_cache
    assert json.loads((bf16.path / "config.json").read_text())["precision"]["chosen"] == "bf16"
