"""R-precision of a perfect and of a random encoder (1 true caption among 100)."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.plugins.common.retrieval import retrieval_r_precision


def test_perfect_encoder_scores_one():
    g = torch.Generator().manual_seed(0)
    sent = torch.randn(500, 32, generator=g)
    r = retrieval_r_precision(sent.clone(), sent, None, candidates=100, folds=10, seed=0)
    assert r.mean == 1.0 and r.std == 0.0 and r.folds == 10


def test_random_encoder_scores_about_one_in_a_hundred():
    g = torch.Generator().manual_seed(1)
    codes, sent = torch.randn(3000, 32, generator=g), torch.randn(3000, 32, generator=g)
    r = retrieval_r_precision(codes, sent, None, candidates=100, folds=10, seed=0)
    assert r.mean == pytest.approx(0.01, abs=0.006)
