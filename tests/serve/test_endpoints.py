"""The endpoints through real HTTP on localhost: generate (JSON and PNG), the model card,
health, readiness and the Prometheus metrics."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from serve_helpers import png_of

from t2i_stages.export.runtime import draw_noise, load_deployment, to_pixels


def _pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_health_and_readiness(live):
    assert live.client.get("/healthz").json() == {"status": "ok"}
    ready = live.client.get("/readyz")
    assert ready.status_code == 200
    warm = ready.json()["warm_up"]
    assert warm["batch_invariant"] is True and warm["max_abs_diff"] == 0.0


def test_model_card_comes_from_model_json(live, demo_deploy):
    import json

    manifest = json.loads((demo_deploy / "model.json").read_text())
    card = live.client.get("/v1/model").json()
    assert card["recipe"]["sha256"] == manifest["source"]["recipe_sha256"]
    assert card["recipe"]["name"] == "grgan" and card["recipe"]["step"] == 2
    assert [s["resolution"] for s in card["stages"]] == [8, 16, 32]
    assert card["vocab_size"] == manifest["tokenizer"]["vocab_size"]
    assert card["max_words"] == 16
    assert card["parity"]["fp32"]["passed"] is True
    assert card["parity"]["fp32"]["max_abs_diff"] == manifest["parity"]["fp32"]["max_abs_diff"]
    assert card["providers"] == {
        "text_encoder": ["CPUExecutionProvider"],
        "generator": ["CPUExecutionProvider"],
    }
    assert card["batching"]["padding"] == "none" and card["batching"]["max_batch"] == 16
    assert "truncated" in card["limits"]["long_captions"]


def test_generate_json_equals_the_runtime_with_the_same_seed(live, demo_deploy):
    """Every stage, every sample: the PNGs are the torch-free runtime's images for the seed."""
    captions = ["a red circle", "a large blue square"]
    reply = live.generate(captions=captions, n=2, seed=11, stages="all").json()
    assert reply["seed"] == 11 and reply["n"] == 2
    assert [s["resolution"] for s in reply["stages"]] == [8, 16, 32]
    dep = load_deployment(demo_deploy, "cpu", threads=1)
    rows = [c for c in captions for _ in range(2)]
    ids, mask = dep.tokenize(rows)
    z, eps = draw_noise(4, dep.z_dim, dep.eps_dim, 11)
    want = dep.run(ids, mask, z, eps)  # four rows: no padding involved
    for i in range(2):
        res = reply["results"][i]
        assert res["caption"] == captions[i] and res["warnings"] == []
        assert [t["id"] for t in res["tokens"]] == ids[2 * i][mask[2 * i]].tolist()
        for k in range(2):
            for s in range(3):
                got = _pixels(png_of(reply, i, k, s))
                np.testing.assert_array_equal(got, to_pixels(want[s][2 * i + k : 2 * i + k + 1])[0])


def test_generate_picks_a_seed_and_reports_it(live):
    a = live.generate(captions=["a red circle"]).json()
    assert isinstance(a["seed"], int) and 0 <= a["seed"] < 2**31
    again = live.generate(captions=["a red circle"], seed=a["seed"]).json()
    assert png_of(again) == png_of(a)
    other = live.generate(captions=["a red circle"], seed=a["seed"] + 1).json()
    assert png_of(other) != png_of(a)


def test_long_captions_are_truncated_with_a_warning_and_unknown_words_flagged(live):
    words = "a red circle on the left of a big blue square near a green star zzqq below it all"
    reply = live.generate(captions=[words], seed=0).json()
    res = reply["results"][0]
    assert len(res["tokens"]) == 16 and res["truncated"] is True
    assert res["dropped_tokens"] == 3
    assert " ".join(t["word"] for t in res["tokens"]) == " ".join(words.split()[:16])
    unknown = [t for t in res["tokens"] if not t["known"]]
    assert [t["word"] for t in unknown] == ["zzqq"] and unknown[0]["id"] == 1  # <unk>
    assert any("truncated (dropped: below it all)" in w for w in res["warnings"])
    assert reply["warnings"] == res["warnings"]
    assert any("zzqq" in w for w in res["warnings"])
    # the model saw exactly the first 16 words: the same image as the caption cut by hand
    cut = live.generate(captions=[" ".join(words.split()[:16])], seed=0).json()
    assert png_of(cut) == png_of(reply)


def test_png_format_is_one_grid_of_the_last_stage(live):
    json_reply = live.generate(captions=["a red circle", "a blue star"], n=3, seed=5).json()
    r = live.generate(captions=["a red circle", "a blue star"], n=3, seed=5, format="png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "5"
    grid = np.asarray(Image.open(io.BytesIO(r.content)))
    assert grid.shape == (2 * 34 + 2, 3 * 34 + 2, 3)  # 32-px images, 2-px white gaps
    for i in range(2):
        for k in range(3):
            y, x = 2 + i * 34, 2 + k * 34
            want = _pixels(png_of(json_reply, i, k))
            np.testing.assert_array_equal(grid[y : y + 32, x : x + 32], want)


def test_attention_on_a_model_without_it_is_a_422_naming_the_field(live):
    r = live.generate(captions=["a red circle"], attention=True)
    assert r.status_code == 422
    assert r.json()["field"] == "attention" and "--attention" in r.json()["error"]


def test_metrics_parse_as_prometheus_text(live):
    live.generate(captions=["a red circle"], n=2, seed=1)
    live.generate(captions=[""])  # a 422
    text = live.client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text.text)}
    for name in (
        "t2i_requests",
        "t2i_request_seconds",
        "t2i_queue_seconds",
        "t2i_batch_rows",
        "t2i_batch_requests",
        "t2i_batch_run_seconds",
        "t2i_queue_rows",
        "t2i_rejected",
        "t2i_ready",
    ):
        assert name in families, name
    assert families["t2i_request_seconds"].type == "histogram"
    assert families["t2i_batch_rows"].type == "histogram"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    ok = samples[
        ("t2i_requests_total", (("code", "200"), ("method", "POST"), ("route", "/v1/generate")))
    ]
    bad = samples[
        ("t2i_requests_total", (("code", "422"), ("method", "POST"), ("route", "/v1/generate")))
    ]
    assert ok >= 1 and bad >= 1
    assert samples[("t2i_rejected_total", (("reason", "invalid"),))] >= 1
    assert samples[("t2i_ready", ())] == 1.0
    assert samples[("t2i_batch_rows_count", ())] >= 1
    assert samples[("t2i_images_total", ())] >= 2


@pytest.mark.parametrize(
    ("path", "method", "status", "field"),
    [
        ("/nope", "GET", 404, "path"),
        ("/v1/generate", "GET", 405, "method"),
        ("/healthz", "POST", 405, "method"),
    ],
)
def test_unknown_routes_and_methods_are_json_errors(live, path, method, status, field):
    r = live.client.request(method, path)
    assert r.status_code == status
    assert r.json()["field"] == field and "\n" not in r.text
