"""The distance functions against closed-form Gaussian cases."""

from __future__ import annotations

import numpy as np
import pytest

from t2i_stages.errors import T2IError
from t2i_stages.evaluation import (
    GaussianStats,
    cmd,
    cmd_from_stats,
    frechet_distance,
    inception_score_from_probs,
    itdis,
    kernel_distance,
)


def test_frechet_closed_form_diagonal():
    # diagonal Gaussians: |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_frechet_rotated_covariance_and_identity():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    sigma = q @ np.diag([1.0, 2.0, 3.0, 4.0]) @ q.T
    mu = rng.normal(size=4)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    # same covariance: only the mean term remains
    assert frechet_distance(mu, sigma, mu + 2, sigma) == pytest.approx(16.0, rel=1e-6)
    # scaled covariance c^2 S vs S: Tr(S) (c - 1)^2
    assert frechet_distance(mu, 9 * sigma, mu, sigma) == pytest.approx(10.0 * 4, rel=1e-6)


def test_frechet_rejects_mismatched_sizes():
    with pytest.raises(T2IError, match="different sizes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def _iso(mean: float, var: float, d: int = 2) -> GaussianStats:
    return GaussianStats(np.full(d, mean), var * np.eye(d))


def test_cmd_and_itdis_both_forms():
    # isotropic 2-d Gaussians: d = 2 (m1 - m2)^2 + 2 (sqrt v1 - sqrt v2)^2
    real, fake, text = _iso(0, 1), _iso(1, 1), _iso(0, 4)
    d_rf, d_fl, d_rl = 2.0, 2.0 + 2.0, 2.0  # (1)^2*2 ; 2*1 + 2*(1-2)^2 ; 2*(1-2)^2
    out = cmd_from_stats(real, fake, text)
    assert out["d_real_fake"] == pytest.approx(d_rf)
    assert out["d_fake_text"] == pytest.approx(d_fl)
    assert out["d_real_text"] == pytest.approx(d_rl)
    assert out["CMD_paper"] == pytest.approx(d_rf + abs(d_fl - d_rl))
    assert out["ITDis_paper"] == pytest.approx(2.0)
    assert out["CMD_script"] == pytest.approx(d_rf + d_fl - d_rl)
    # where f is closer to the text than r is, the two forms differ in sign
    assert itdis(1.0, 3.0, "paper") == 2.0 and itdis(1.0, 3.0, "script") == -2.0
    assert cmd(5.0, 1.0, 3.0, "paper") == 7.0 and cmd(5.0, 1.0, 3.0, "script") == 3.0
    with pytest.raises(T2IError, match="unknown CMD form"):
        itdis(1.0, 2.0, "other")  # type: ignore[arg-type]


def test_stats_npz_roundtrip_and_errors(tmp_path):
    feats = np.random.default_rng(1).normal(size=(50, 3))
    st = GaussianStats.from_features(feats)
    assert np.allclose(st.sigma, np.cov(feats, rowvar=False))
    back = GaussianStats.load(st.save(tmp_path / "ref.npz"))
    assert np.allclose(back.mu, st.mu) and back.count == 50
    np.savez(tmp_path / "bad.npz", mu=st.mu)
    with pytest.raises(T2IError, match="lack sigma"):
        GaussianStats.load(tmp_path / "bad.npz")
    with pytest.raises(T2IError, match="not found"):
        GaussianStats.load(tmp_path / "none.npz")


def test_kernel_distance_is_seeded_and_zero_for_same_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    assert kernel_distance(a, b, 20, 200, seed=3) == kernel_distance(a, b, 20, 200, seed=3)
    assert abs(kernel_distance(a, b, 50, 200)) < 0.02
    assert kernel_distance(a, b + 1.0, 50, 200) > 0.5


def test_inception_score_extremes():
    k = 10
    uniform = np.full((100, k), 1.0 / k)
    assert inception_score_from_probs(uniform, 10) == pytest.approx((1.0, 0.0), abs=1e-6)
    onehot = np.eye(k)[np.arange(100) % k]  # confident and evenly spread: IS = k
    mean, std = inception_score_from_probs(onehot, 10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
