"""Fixtures for the reliability tests: the micro recipe and the test-only fault plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rel_helpers import HERE, MICRO, write_dist

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def micro(registry):
    """micro(*overrides, reg=None) -> the validated micro recipe, trained on one thread."""

    def load(*overrides: str, reg=None):
        return load_recipe(MICRO, ["train.threads=1", *overrides], reg or registry)

    return load


@pytest.fixture(autouse=True)
def _restore_threads():
    """A recipe's ``train.threads`` sets torch's thread count; give the next test its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fault_site(tmp_path_factory) -> Path:
    """A site folder declaring the test-only ``faults`` plugin (see t2i_rel_faults.py)."""
    site = tmp_path_factory.mktemp("fault-site")
    write_dist(site, "rel-faults", {"faults": "t2i_rel_faults"})
    return site


@pytest.fixture
def fault_registry(fault_site, monkeypatch):
    """A registry that includes the fault plugin, discovered through its entry point."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(fault_site))
    for var in ("T2I_STAGES_DISABLE_PLUGINS", "T2I_STAGES_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    reg = load_registry()
    assert "nan_loss" in reg.names("loss"), reg.load_errors
    return reg
