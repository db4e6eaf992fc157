"""FID/KID machinery on synthetic sets with the seeded random extractor; the offline errors."""

from __future__ import annotations

import numpy as np
import pytest

from t2i_stages.assets import MissingAssetError
from t2i_stages.evaluation import GaussianStats, kernel_distance, stats_distance
from t2i_stages.evaluation.extractors import (
    INCEPTION_FILE,
    InceptionExtractor,
    random_extractor,
    resize_uint8,
)


@pytest.fixture(scope="module")
def feats(blobs):
    ex = random_extractor(dim=32, seed=0)
    base = blobs(400, seed=0)
    return ex, {s: ex.features(blobs(400, seed=1, shift=s)) for s in (0.0, 0.1, 0.3)}, base


def _fd(a, b):
    return stats_distance(GaussianStats.from_features(a), GaussianStats.from_features(b))


def test_fid_of_a_set_against_itself_is_zero(feats):
    ex, by_shift, _ = feats
    f = by_shift[0.0]
    assert _fd(f, f) == pytest.approx(0.0, abs=1e-6)


def test_fid_grows_with_a_known_shift(feats):
    ex, by_shift, base = feats
    ref = ex.features(base)
    d0, d1, d3 = (_fd(ref, by_shift[s]) for s in (0.0, 0.1, 0.3))
    assert d0 < d1 < d3
    assert d3 > 10 * d0


def test_kid_is_unbiased_around_zero_for_two_halves(feats):
    ex, by_shift, _ = feats
    f = by_shift[0.0]
    rng = np.random.default_rng(0)
    kids = []
    for seed in range(8):
        perm = rng.permutation(len(f))
        kids.append(kernel_distance(f[perm[:200]], f[perm[200:]], 20, 200, seed=seed))
    shifted = kernel_distance(f[:200], by_shift[0.3][200:], 20, 200)
    assert abs(np.mean(kids)) < 0.05 * shifted
    assert min(kids) < 0 < max(kids) or abs(np.mean(kids)) < 1e-3  # unbiased: both signs occur


def test_random_extractor_is_seeded(blobs):
    x = blobs(4, seed=5)
    a = random_extractor(16, seed=1)
    assert np.allclose(a.features(x), random_extractor(16, seed=1).features(x))
    assert a.weights_sha256 == random_extractor(16, seed=1).weights_sha256
    assert a.weights_sha256 != random_extractor(16, seed=2).weights_sha256


def test_resize_uses_clean_fid_and_keeps_range(blobs):
    x = blobs(2, seed=0, size=16)
    y = resize_uint8(x, 40)
    assert y.shape == (2, 3, 40, 40) and float(y.min()) >= 0 and float(y.max()) <= 255
    assert resize_uint8(x, 16).dtype.is_floating_point


def test_missing_inception_names_the_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    with pytest.raises(MissingAssetError) as err:
        InceptionExtractor("cpu")
    msg = str(err.value)
    assert INCEPTION_FILE in msg and str(tmp_path / "home" / "cleanfid") in msg
    assert "nothing is downloaded" in msg
    with pytest.raises(MissingAssetError, match="elsewhere.pt"):
        InceptionExtractor("cpu", path=str(tmp_path / "elsewhere.pt"))


def test_missing_torchvision_inception_for_is(registry, tmp_path, monkeypatch):
    from t2i_stages.evaluation.slots import make_slot

    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path))
    slot = make_slot("inception_score", {}, registry)
    with pytest.raises(MissingAssetError, match="inception_v3_google"):
        registry.build("metric", slot)
