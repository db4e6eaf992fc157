"""GR-GAN's released CMD statistics (eval/CMD/image_feature.npz, sent_feature.npz, carried as
fixtures): our distance arithmetic on them against an independent scipy computation, and the
check that they are only used in the space their script computed them in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from t2i_stages.errors import T2IError
from t2i_stages.evaluation.distances import GaussianStats, cmd_from_stats, stats_distance
from t2i_stages.plugins.metrics.cmd import build_cmd, check_reference_stats, released_stats_problems
from t2i_stages.plugins.metrics.params import CmdParams

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference" / "grgan-cmd"
IMAGES, SENTENCES = FIXTURES / "image_feature.npz", FIXTURES / "sent_feature.npz"


def scipy_frechet(a: GaussianStats, b: GaussianStats) -> float:
    """‖μa−μb‖² + tr Σa + tr Σb − 2 tr √(Σa Σb), written out independently of clean-fid."""
    root = linalg.sqrtm(a.sigma @ b.sigma)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(root.real))


def test_the_released_statistics_are_what_the_protocol_says():
    images, sentences = GaussianStats.load(IMAGES), GaussianStats.load(SENTENCES)
    assert images.mu.shape == sentences.mu.shape == (512,)
    # features of norm 10 (images, x10) and 1 (sentences): E‖x‖² = ‖μ‖² + tr Σ, up to ddof=1
    assert images.mu @ images.mu + np.trace(images.sigma) == pytest.approx(100.0, abs=0.01)
    assert sentences.mu @ sentences.mu + np.trace(sentences.sigma) == pytest.approx(1.0, abs=1e-3)


def test_our_distance_and_cmd_equal_scipy_on_the_released_statistics():
    r, t = GaussianStats.load(IMAGES), GaussianStats.load(SENTENCES)
    d_rl = stats_distance(r, t)
    assert abs(d_rl - scipy_frechet(r, t)) < 1e-6
    rng = np.random.default_rng(0)  # a "generated" set: the real Gaussian, moved and squeezed
    f = GaussianStats(r.mu + rng.normal(0, 0.05, 512), 0.9 * r.sigma)
    d = cmd_from_stats(r, f, t)
    by_scipy = {"rf": scipy_frechet(r, f), "fl": scipy_frechet(f, t), "rl": scipy_frechet(r, t)}
    assert abs(d["d_real_fake"] - by_scipy["rf"]) < 1e-6
    assert abs(d["d_fake_text"] - by_scipy["fl"]) < 1e-6
    script = by_scipy["rf"] + by_scipy["fl"] - by_scipy["rl"]  # CMD_score.py: signed, no |.|
    assert abs(d["CMD_script"] - script) < 1e-6


def _clip_folder(tmp_path: Path, patch: int) -> Path:
    folder = tmp_path / f"clip-p{patch}"
    folder.mkdir()
    config = {"projection_dim": 512, "vision_config": {"patch_size": patch, "hidden_size": 768}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_released_statistics_are_refused_in_another_space(tmp_path):
    vit_b32, vit_b16 = _clip_folder(tmp_path, 32), _clip_folder(tmp_path, 16)
    ok = CmdParams(clip_folder=str(vit_b32), real_stats=str(IMAGES), text_stats=str(SENTENCES))
    assert build_cmd(ok) is not None  # the script's own space: accepted
    found = check_reference_stats(ok, None)
    assert set(found) == {"real_stats", "text_stats"} and "image_feature.npz" in found["real_stats"]
    for change, what in [
        ({"space": "matcher"}, "space is 'matcher', not clip"),
        ({"clip_folder": str(vit_b16)}, "is not CLIP ViT-B/32"),
        ({"clip_normalize": True}, "clip_normalize is true"),
        ({"image_scale": 1.0}, "image_scale is 1, not 10"),
    ]:
        params = ok.model_copy(update=change)
        with pytest.raises(T2IError) as info:
            build_cmd(params)
        (line,) = str(info.value).splitlines()
        assert line.startswith(f"cmd: real_stats {IMAGES} is GR-GAN's released") and what in line
    assert released_stats_problems(ok.model_copy(update={"text_scale": 10.0}), None) == [
        "text_scale is 10, not 1"
    ]


def test_statistics_of_our_own_are_not_mistaken_for_the_released_ones(tmp_path):
    own = GaussianStats(np.zeros(4), np.eye(4)).save(tmp_path / "real.npz")
    params = CmdParams(space="matcher", real_stats=str(own))
    assert check_reference_stats(params, None) == {}
