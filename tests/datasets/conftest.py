"""Shared fixtures for the dataset tests: tiny shapes splits in a private cache folder."""

from __future__ import annotations

import pytest

from t2i_stages.plugins.datasets.shapes import ShapesDataset, ShapesParams


@pytest.fixture(scope="session")
def shapes_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shapes-cache")


@pytest.fixture(scope="session")
def tiny_params(shapes_cache) -> ShapesParams:
    return ShapesParams(
        train_size=48,
        test_size=12,
        resolutions=[16, 32, 64],
        cache_dir=str(shapes_cache),
        workers=1,
    )


@pytest.fixture(scope="session")
def tiny_train(tiny_params) -> ShapesDataset:
    return ShapesDataset(tiny_params, "train", quiet=True)
