"""Fixtures for the model tests (helpers live in model_helpers.py)."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.registry import Registry, load_registry


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()
