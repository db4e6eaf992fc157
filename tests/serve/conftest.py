"""Fixtures for the serving tests: an export of the demo run, and live servers on localhost.

The export is of ``recipes/grgan.yaml`` itself (the demo's model: three stages 8/16/32 px,
CLIP text tower, dynamic memory), trained for 2 steps on a small shapes split with a
2-step matcher pretraining (``DEMO_OVERRIDES``), so that it is made in seconds; the
legacy torchscript exporter writes it in about a second. The live servers are in
serve_helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import LiveServer

REPO = Path(__file__).resolve().parents[2]
DEMO_RECIPE = REPO / "recipes" / "grgan.yaml"
# the demo recipe shrunk in time only (its model and its captions' word limit are unchanged)
DEMO_OVERRIDES = [
    "train.max_steps=2",
    "train.ckpt_every=2",
    "train.sample_every=100",
    "train.precision=fp32",
    "data.dataset.params.train_size=64",
    "data.dataset.params.test_size=32",
    "data.batch_size=8",
    "matcher.params.pretrain.steps=2",
    "matcher.params.pretrain.batch_size=8",
    "matcher.params.pretrain.eval_samples=16",
]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo run, trained briefly (``DEMO_OVERRIDES``)."""
    from t2i_stages.recipe import load_recipe
    from t2i_stages.registry import load_registry
    from t2i_stages.training import train

    registry = load_registry()
    recipe = load_recipe(DEMO_RECIPE, DEMO_OVERRIDES, registry)
    run = tmp_path_factory.mktemp("serve-demo") / "run"
    train(recipe, registry, run, evaluate=False, log=lambda *a, **k: None)
    return run


@pytest.fixture(scope="session")
def demo_deploy(demo_run) -> Path:
    """The deployment folder of the demo run (images only)."""
    from t2i_stages.export.api import export_run

    return export_run(demo_run, demo_run.parent / "deploy", exporter="torchscript").folder


@pytest.fixture(scope="session")
def demo_deploy_attention(demo_run) -> Path:
    """The same run exported with ``--attention`` (stages 1 and 2: 8 and 16 px maps)."""
    from t2i_stages.export.api import export_run

    out = demo_run.parent / "deploy-attention"
    return export_run(demo_run, out, exporter="torchscript", attention=True).folder


@pytest.fixture(scope="module")
def live(demo_deploy):
    """A server on the demo export with the default settings (one ONNX Runtime thread)."""
    from t2i_stages.serve import create_app

    with LiveServer(create_app(demo_deploy, provider="cpu", threads=1)) as server:
        yield server
