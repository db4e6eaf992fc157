"""Fixtures for the ablation tests: one thread, one registry, a tiny base recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t2i_stages.registry import load_registry

HERE = Path(__file__).parent
TINY = HERE / "tiny.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture
def write_ablation(tmp_path):
    """write_ablation(text) -> path of an ablation file whose base is the tiny recipe."""

    def write(body: str, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(f"base: {TINY}\n{body}", encoding="utf-8")
        return path

    return write
