"""The attention part of a reply, and the static page hook.

Attention: until exports carry attention outputs (issue 20, point 1, another branch), the
model here is the real demo deployment whose ``run_all`` adds maps computed from its own
images: a softmax over the caption's real words at every pixel, as the graphs' word attention
gives. That pins what the server does with ``run_all``'s maps: one PNG per token and stage,
scaled by its maximum (reported), independent of batch-mates.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from types import SimpleNamespace

import numpy as np
from conftest import LiveServer
from PIL import Image

from t2i_stages.export.runtime import Deployment
from t2i_stages.serve import ServedModel, create_app, make_config


class DeploymentWithAttention(Deployment):
    """The real deployment plus word-attention maps for stages 1 and 2 (see the docstring)."""

    has_attention = True
    attention_stages = [1, 2]

    def run_all(self, token_ids, token_mask, z, eps=None):
        images = self.run(token_ids, token_mask, z, eps)
        steps = np.arange(1, token_ids.shape[1] + 1, dtype=np.float32)[None, :, None, None]
        attention = {}
        for stage in self.attention_stages:
            logits = images[stage].mean(1)[:, None] * steps * 4.0  # (B, T, r, r)
            logits = np.where(token_mask[:, :, None, None], logits, -np.inf)
            e = np.exp(logits - logits.max(1, keepdims=True))
            attention[stage] = e / e.sum(1, keepdims=True)
        return SimpleNamespace(images=images, attention=attention)


def _with_attention(deploy, max_delay_ms: float = 20):
    config = make_config(provider="cpu", threads=1, max_delay_ms=max_delay_ms)
    real = ServedModel.load(deploy, config).deployment
    dep = DeploymentWithAttention(**{f.name: getattr(real, f.name) for f in fields(real)})
    return ServedModel(dep, "pair", config.max_batch), config


def _grey(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))), dtype=np.float32)


def test_attention_maps_are_one_png_per_token_and_stage(demo_deploy):
    model, config = _with_attention(demo_deploy, max_delay_ms=300)
    body = {"captions": ["a red circle", "zzqq blue"], "n": 2, "seed": 5, "attention": True}
    other = {"captions": ["a green star"], "n": 3, "seed": 8, "attention": True}
    with LiveServer(create_app(demo_deploy, config, model=model)) as live:
        reply = live.client.post("/v1/generate", json=body).json()
        assert reply["batch"]["calls"] == [4]
        with ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(live.client.post, "/v1/generate", json=b) for b in [body, other] * 3
            ]
            batched = [f.result().json() for f in futures]
    ids, mask = model.encode(["a red circle"] * 2 + ["zzqq blue"] * 2)
    z, eps = model.noise(4, 5)
    want = model.deployment.run_all(ids, mask, z, eps).attention
    for i, res in enumerate(reply["results"]):
        for k, sample in enumerate(res["samples"]):
            row = 2 * i + k
            assert [m["stage"] for m in sample["attention"]] == [1, 2]
            for maps in sample["attention"]:
                r = maps["resolution"]
                assert r == {1: 16, 2: 32}[maps["stage"]]
                assert [w["word"] for w in maps["words"]] == [t["word"] for t in res["tokens"]]
                for w in maps["words"]:
                    exact = want[maps["stage"]][row, w["token"]]
                    assert w["max"] == float(exact.max()) > 0
                    got = _grey(w["png"]) / 255.0 * w["max"]
                    assert got.shape == (r, r)
                    np.testing.assert_allclose(got, exact, atol=w["max"] / 255.0 * 0.51)
    # batched with others, the same request gets the same maps and images
    twins = [b for b in batched if b["results"][0]["caption"] == "a red circle"]
    assert len(twins) == 3 and any(max(b["batch"]["calls"]) > 4 for b in batched)
    for twin in twins:
        assert twin["results"] == reply["results"]


def test_stages_all_returns_every_stage_and_last_only_the_last(demo_deploy):
    model, config = _with_attention(demo_deploy)
    with LiveServer(create_app(demo_deploy, config, model=model)) as live:
        every = live.generate(captions=["a red circle"], seed=1, stages="all").json()
        last = live.generate(captions=["a red circle"], seed=1).json()
    assert [im["stage"] for im in every["results"][0]["samples"][0]["images"]] == [0, 1, 2]
    assert [im["stage"] for im in last["results"][0]["samples"][0]["images"]] == [2]
    assert (
        last["results"][0]["samples"][0]["images"][0]
        == every["results"][0]["samples"][0]["images"][2]
    )
    assert "attention" not in last["results"][0]["samples"][0]


def test_a_static_page_and_its_assets_are_served_from_a_folder(demo_deploy, tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>t2i</title>")
    (tmp_path / "app.js").write_text("console.log('t2i')")
    with LiveServer(
        create_app(demo_deploy, provider="cpu", threads=1, static_dir=tmp_path)
    ) as live:
        page = live.client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<title>t2i</title>" in page.text
        assert live.client.get("/static/app.js").text == "console.log('t2i')"
        assert live.client.get("/static/nope.js").status_code == 404
    with LiveServer(create_app(demo_deploy, provider="cpu", threads=1, static_dir=None)) as live:
        r = live.client.get("/")
        assert r.status_code == 404 and r.json()["field"] == "path"
