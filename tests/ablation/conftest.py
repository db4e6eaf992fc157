"""Fixtures for the ablation tests: one thread, one registry, a tiny base recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from launch_study import PARITY, PARITY_RUNS, one_run_thread

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


@pytest.fixture(scope="session")
def parity_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "parity.yaml"
    path.write_text(f"base: {TINY}\n{PARITY}", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def local_parity(parity_file, registry, tmp_path_factory) -> Path:
    """The parity study run by the local launcher (the reference for the others)."""
    from t2i_stages.ablation import run_ablation

    out = tmp_path_factory.mktemp("parity-local")
    with one_run_thread():
        result = run_ablation(parity_file, registry=registry, out_dir=out, log=lambda *a: None)
    assert sorted(result.trained) == sorted(PARITY_RUNS)
    return out
