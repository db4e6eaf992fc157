"""Micro-batching through real HTTP: 200 requests from 32 concurrent clients, every result
equal to its unbatched twin; merging up to --max-batch and splitting a large request; the
bounded queue's 503 + Retry-After; the padding that makes batching invariant on the CPU."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from serve_helpers import LiveServer

from t2i_stages.serve import ServedModel, create_app, make_config

CAPTIONS = [
    "a red circle",
    "a large blue square at the top left of the image",
    "a small green star below a yellow triangle near the middle of the picture on the right",
    "a purple heart",
    "zzqq unknown words and a cyan diamond",
]


class GatedModel(ServedModel):
    """The real model, but each call waits for ``gate`` (open while warming up)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def run(self, ids, mask, z, eps):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.calls.append(int(ids.shape[0]))
        return super().run(ids, mask, z, eps)


def _gated(deploy, **settings) -> tuple[GatedModel, object]:
    config = make_config(provider="cpu", threads=1, **settings)
    base = ServedModel.load(deploy, config)
    model = GatedModel(base.deployment, base.padding, config.max_batch)
    return model, create_app(deploy, config, model=model)


def _images(reply: dict) -> list[str]:
    return [
        im["png"]
        for res in reply["results"]
        for sample in res["samples"]
        for im in sample["images"]
    ]


def test_200_requests_from_32_clients_equal_their_unbatched_twins(demo_deploy):
    rng = random.Random(0)
    kinds = [
        {"captions": [c], "n": n, "seed": seed, "stages": "all"}
        for c in CAPTIONS
        for n, seed in ((1, 3), (2, 7))
    ] + [{"captions": CAPTIONS[:3], "n": 1, "seed": 99, "stages": "all"}]
    app = create_app(demo_deploy, provider="cpu", threads=1, max_batch=16, max_delay_ms=20)
    with LiveServer(app) as live:
        twins = {}
        for i, body in enumerate(kinds):  # one at a time: each runs in a call of its own
            reply = live.client.post("/v1/generate", json=body).json()
            rows = len(body["captions"]) * body["n"]
            assert reply["batch"]["calls"] == [rows], "a twin must run alone"
            twins[i] = _images(reply)
        picks = [rng.randrange(len(kinds)) for _ in range(200)]

        async def fire() -> list[tuple[int, httpx.Response]]:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as client:
                gate = asyncio.Semaphore(32)

                async def one(kind: int):
                    async with gate:
                        return kind, await client.post("/v1/generate", json=kinds[kind])

                return await asyncio.gather(*(one(k) for k in picks))

        t0 = time.perf_counter()
        results = asyncio.run(fire())
        took = time.perf_counter() - t0
        merged = 0
        for kind, r in results:
            assert r.status_code == 200, r.text
            reply = r.json()
            rows = len(kinds[kind]["captions"]) * kinds[kind]["n"]
            merged += max(reply["batch"]["calls"]) > rows
            assert _images(reply) == twins[kind], f"request kind {kind} differs when batched"
        assert merged > 50, f"only {merged} of 200 requests shared a call"
        print(f"200 requests, 32 clients: {took:.2f} s; {merged} ran with batch-mates")


def test_requests_merge_up_to_max_batch_and_a_large_one_is_split(demo_deploy):
    model, app = _gated(demo_deploy, max_batch=8, max_delay_ms=5, max_queue=64)
    with LiveServer(app) as live, ThreadPoolExecutor(4) as pool:
        model.gate.clear()
        model.entered.clear()
        model.calls.clear()
        first = pool.submit(live.generate, captions=["a red circle"], seed=1)
        assert model.entered.wait(30)
        bodies = [
            {"captions": CAPTIONS[:3], "n": 1, "seed": 2},
            {"captions": CAPTIONS[3:], "n": 1, "seed": 3},
            {"captions": ["a purple heart"], "n": 6, "seed": 4},
        ]
        futures = []
        for body in bodies:  # one after the other, so the queue's order is known
            waiting = live.service.batcher.waiting_rows
            futures.append(pool.submit(live.client.post, "/v1/generate", json=body))
            rows = len(body["captions"]) * body["n"]
            while live.service.batcher.waiting_rows < waiting + rows:
                time.sleep(0.005)
        model.gate.set()
        assert first.result().json()["batch"]["calls"] == [1]
        replies = [f.result().json() for f in futures]
        assert model.calls == [1, 8, 3]  # 3 + 2 + 3 of the large one, then its last 3
        assert [r["batch"]["calls"] for r in replies] == [[8], [8], [8, 3]]
        alone = live.client.post("/v1/generate", json=bodies[2]).json()
        assert alone["batch"]["calls"] == [6]
        assert _images(alone) == _images(replies[2])


def test_a_full_queue_answers_503_with_retry_after(demo_deploy):
    model, app = _gated(demo_deploy, max_batch=2, max_delay_ms=0, max_queue=4, max_images=4)
    with LiveServer(app) as live, ThreadPoolExecutor(4) as pool:
        model.gate.clear()
        model.entered.clear()
        running = pool.submit(live.generate, captions=["a red circle"], n=2, seed=1)
        assert model.entered.wait(30)
        queued = [pool.submit(live.generate, captions=["a blue star"], n=2, seed=s) for s in (2, 3)]
        while live.service.batcher.waiting_rows < 4:
            time.sleep(0.005)
        r = live.generate(captions=["a red circle"], seed=4)
        assert r.status_code == 503
        assert r.json()["field"] == "queue" and "4 of 4" in r.json()["error"]
        assert int(r.headers["retry-after"]) >= 1
        assert live.client.get("/healthz").status_code == 200  # alive while saturated
        model.gate.set()
        assert running.result().status_code == 200
        assert [f.result().status_code for f in queued] == [200, 200]
        assert live.generate(captions=["a red circle"], seed=4).status_code == 200
        metrics = live.client.get("/metrics").text
        assert 't2i_rejected_total{reason="unavailable"} 1.0' in metrics


def test_a_lone_row_runs_unpadded_and_equals_its_batched_twin(demo_deploy):
    """Today's exports pool the caption with a batched MatMul: a call of one row equals the same
    row in a full batch, so the CPU default runs it as one row (no padding)."""
    config = make_config(provider="cpu", threads=1, max_batch=4)
    model = ServedModel.load(demo_deploy, config)
    assert (model.padding, model.fallback) == ("none", "pair")
    report = model.warm_up()
    assert report["batch_invariant"] is True and report["max_abs_diff"] == 0.0
    assert model.padding == "none" and report["padding"] == "none" and "fell_back" not in report
    assert model.padded_rows(1) == 1
    full = ServedModel(model.deployment, "full", 4)
    assert full.padded_rows(1) == 4 and full.padded_rows(4) == 4
    assert full.warm_up()["batch_invariant"] is True
    ids, mask = model.encode(["a red circle"])
    z, eps = model.noise(1, 0)
    alone, whole = model.run(ids, mask, z, eps), full.run(ids, mask, z, eps)
    assert [im.shape[0] for im in alone.images] == [1, 1, 1]
    for a, b in zip(alone.images, whole.images, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def reducesum_deploy(demo_run, tmp_path_factory):
    """The demo run exported as before the MatMul pooling: its masked sum a ``ReduceSum``."""
    from t2i_stages import masking
    from t2i_stages.export.api import export_run

    out = tmp_path_factory.mktemp("reducesum") / "deploy"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(masking, "_masked_sum", lambda v, m, dim: (v * m).sum(dim=dim))
        return export_run(demo_run, out, exporter="torchscript").folder


def test_an_export_that_sums_a_lone_row_differently_falls_back_to_pair(reducesum_deploy):
    """ONNX Runtime's CPU ReduceSum sums a batch of one in another order: the warm-up finds the
    difference without padding and falls back to ``pair``, which removes it."""
    model = ServedModel.load(reducesum_deploy, make_config(provider="cpu", threads=1, max_batch=4))
    unpadded = ServedModel(model.deployment, "none", 4).warm_up()
    assert unpadded["batch_invariant"] is False and 0 < unpadded["max_abs_diff"] < 1e-5
    report = model.warm_up()
    assert report["batch_invariant"] is True and model.padding == "pair"
    assert report["fell_back"]["from"] == "none" and report["fell_back"]["max_abs_diff"] > 0
    assert model.padded_rows(1) == 2


@pytest.mark.parametrize("bad", [{"max_images": 300, "max_queue": 256}, {"max_batch": 0}])
def test_inconsistent_settings_are_one_line_errors(bad):
    from t2i_stages.errors import T2IError

    with pytest.raises(T2IError) as info:
        make_config(**bad)
    flag = "--" + next(iter(bad)).replace("_", "-")
    assert str(info.value).startswith(flag) and "\n" not in str(info.value)


def test_the_server_stops_spinning_in_every_onnx_runtime_session_unless_asked(demo_deploy):
    """By default idle intra-op threads sleep (no busy-waiting), in every graph's session;
    ``--spinning`` leaves ONNX Runtime's own default."""
    key = "session.intra_op.allow_spinning"
    quiet = ServedModel.load(demo_deploy, make_config(provider="cpu", threads=1))
    sessions = quiet.deployment.sessions.values()
    assert [s.get_session_options().get_session_config_entry(key) for s in sessions] == ["0"] * 2
    spinning = ServedModel.load(demo_deploy, make_config(provider="cpu", threads=1, spinning=True))
    for s in spinning.deployment.sessions.values():  # unset: ONNX Runtime's default (spinning)
        with pytest.raises(RuntimeError, match="does not have configuration"):
            s.get_session_options().get_session_config_entry(key)
    assert quiet.warm_up()["batch_invariant"] is True
