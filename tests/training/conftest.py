"""Fixtures for the engine tests: the micro recipe, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry

MICRO = Path(__file__).with_name("micro.yaml")


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def micro(registry):
    """load(*overrides) -> the micro recipe, validated."""

    def load(*overrides: str):
        return load_recipe(MICRO, list(overrides), registry)

    return load


@pytest.fixture(scope="session")
def micro_run(micro, registry, tmp_path_factory):
    """One full run of the micro recipe (6 steps, samples, checkpoints, evaluation)."""
    from t2i_stages.training import train

    out = tmp_path_factory.mktemp("micro-run")
    summary = train(micro(), registry, out, log=lambda *a, **k: None)
    return out, summary
