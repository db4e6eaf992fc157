"""The attention part of a reply, from the demo run exported with ``--attention``; stage
selection; and the static page hook."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from serve_helpers import LiveServer

from t2i_stages.export.runtime import draw_noise, load_deployment
from t2i_stages.serve import create_app


def _grey(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))), dtype=np.float32)


def test_attention_maps_are_one_png_per_token_and_stage(demo_deploy_attention):
    deploy = demo_deploy_attention
    body = {"captions": ["a red circle", "zzqq blue"], "n": 2, "seed": 5, "attention": True}
    other = {"captions": ["a green star"], "n": 3, "seed": 8, "attention": True}
    app = create_app(deploy, provider="cpu", threads=1, max_delay_ms=300)
    with LiveServer(app) as live:
        card = live.client.get("/v1/model").json()
        assert [(a["stage"], a["resolution"]) for a in card["attention"]] == [(1, 8), (2, 16)]
        assert card["batching"]["warm_up"]["batch_invariant"] is True  # maps compared too
        reply = live.client.post("/v1/generate", json=body).json()
        assert reply["batch"]["calls"] == [4]
        with ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(live.client.post, "/v1/generate", json=b) for b in [body, other] * 3
            ]
            batched = [f.result().json() for f in futures]
    dep = load_deployment(deploy, "cpu", threads=1)
    ids, mask = dep.tokenize(["a red circle"] * 2 + ["zzqq blue"] * 2)
    z, eps = draw_noise(4, dep.z_dim, dep.eps_dim, 5)
    want = dep.run_all(ids, mask, z, eps).attention
    for i, res in enumerate(reply["results"]):
        assert res["tokens"] == dep.describe_tokens(res["caption"])
        for k, sample in enumerate(res["samples"]):
            row = 2 * i + k
            assert [m["stage"] for m in sample["attention"]] == [1, 2]
            for maps in sample["attention"]:
                r = maps["resolution"]
                assert r == {1: 8, 2: 16}[maps["stage"]]
                assert [w["word"] for w in maps["words"]] == [t["word"] for t in res["tokens"]]
                for w in maps["words"]:
                    exact = want[maps["stage"]][row, w["token"]]
                    assert w["max"] == float(exact.max()) > 0
                    got = _grey(w["png"]) / 255.0 * w["max"]
                    assert got.shape == (r, r)
                    np.testing.assert_allclose(got, exact, atol=w["max"] / 255.0 * 0.51)
                # at each position the weights over the caption's words sum to 1
                total = sum(want[maps["stage"]][row, w["token"]] for w in maps["words"])
                np.testing.assert_allclose(total, 1.0, atol=1e-5)
    # batched with others, the same request gets the same maps and images
    twins = [b for b in batched if b["results"][0]["caption"] == "a red circle"]
    assert len(twins) == 3 and any(max(b["batch"]["calls"]) > 4 for b in batched)
    for twin in twins:
        assert twin["results"] == reply["results"]


def test_stages_all_returns_every_stage_and_last_only_the_last(live):
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
