"""What ``POST /v1/generate`` answers: the JSON reply, or one PNG grid (``format: png``).

The JSON reply, per caption: the tokens the model saw (``known: false`` = read as ``<unk>``),
how many were cut off by its word limit, the warnings, and per sample the PNG (base64) of every
asked stage and, with ``attention: true``, one grey PNG per token and attention stage.
"""

from __future__ import annotations

from typing import Any

from t2i_stages.export.runtime import RunOutputs

from .images import attention_png, b64, grid_png, image_pngs
from .model import CaptionTokens
from .schema import GenerateRequest


def chosen_stages(req: GenerateRequest, n_stages: int) -> list[int]:
    return list(range(n_stages)) if req.stages == "all" else [n_stages - 1]


def json_reply(
    req: GenerateRequest,
    seed: int,
    captions: list[CaptionTokens],
    out: RunOutputs,
    resolutions: list[int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The reply body for ``format: json`` (``extra`` adds timing and batch facts)."""
    stages = chosen_stages(req, len(out.images))
    pngs = {s: image_pngs(out.images[s]) for s in stages}
    results = []
    for i, cap in enumerate(captions):
        samples = []
        for k in range(req.n):
            row = i * req.n + k
            sample: dict[str, Any] = {
                "sample": k,
                "images": [
                    {"stage": s, "resolution": resolutions[s], "png": b64(pngs[s][row])}
                    for s in stages
                ],
            }
            if req.attention:
                sample["attention"] = _attention(out, row, cap)
            samples.append(sample)
        results.append(
            {
                "caption": cap.caption,
                "tokens": cap.tokens,
                "truncated": cap.dropped > 0,
                "dropped_tokens": cap.dropped,
                "warnings": cap.warnings,
                "samples": samples,
            }
        )
    return {
        "seed": seed,
        "n": req.n,
        "stages": [{"stage": s, "resolution": resolutions[s]} for s in stages],
        "results": results,
        "warnings": [w for cap in captions for w in cap.warnings],
        **extra,
    }


def _attention(out: RunOutputs, row: int, cap: CaptionTokens) -> list[dict[str, Any]]:
    maps = []
    for stage in sorted(out.attention):
        weights = out.attention[stage][row]  # (T, r, r)
        words = []
        for t, token in enumerate(cap.tokens[: weights.shape[0]]):
            png, top = attention_png(weights[t])
            words.append({"token": t, "word": token["word"], "max": top, "png": b64(png)})
        maps.append({"stage": stage, "resolution": int(weights.shape[-1]), "words": words})
    return maps


def png_reply(req: GenerateRequest, out: RunOutputs) -> bytes:
    """The last stage's images as one grid: a row per caption, ``n`` columns."""
    return grid_png(out.images[-1], ncol=req.n)
