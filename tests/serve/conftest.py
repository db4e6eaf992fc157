"""Fixtures for the serving tests: an export of the demo run, and live servers on localhost.

The export is of ``recipes/grgan.yaml`` itself (the demo's model: three stages 8/16/32 px,
CLIP text tower, dynamic memory), trained for 2 steps on a small shapes split with a
2-step matcher pretraining (``DEMO_OVERRIDES``), so that it is made in seconds; the
legacy torchscript exporter writes it in about a second. Servers run uvicorn in a thread of
the test process on a socket bound to a free port of 127.0.0.1, and every request goes through
real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

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


class LiveServer:
    """uvicorn serving ``app`` in a thread; ``url``, ``client`` (httpx), ``service``."""

    def __init__(self, app, ready: bool = True):
        self.app = app
        self.wait_ready = ready
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def service(self):
        return self.app.state.service

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.02)
        if self.wait_ready:
            while self.client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the server did not get ready in 60 s"
                time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def generate(self, **body) -> httpx.Response:
        return self.client.post("/v1/generate", json=body)


@pytest.fixture(scope="module")
def live(demo_deploy):
    """A server on the demo export with the default settings (one ONNX Runtime thread)."""
    from t2i_stages.serve import create_app

    with LiveServer(create_app(demo_deploy, provider="cpu", threads=1)) as server:
        yield server


def png_of(reply: dict, caption: int = 0, sample: int = 0, stage: int = -1) -> str:
    """The base64 PNG of one image of a JSON reply."""
    return reply["results"][caption]["samples"][sample]["images"][stage]["png"]
