"""The deployment as the server uses it: tokens described, noise per request, padded calls.

:class:`ServedModel` wraps a torch-free :class:`~t2i_stages.export.runtime.Deployment`. Two
things here exist for the batcher's promise that a request's images do not depend on what it
was batched with:

- noise is drawn per request from its own seed (``draw_noise``, as ``t2i-stages generate``
  draws it), and the rows of several requests are only concatenated;
- where the kernels do not treat every row alike, a call is *padded* to a shape where they do.
  On the CPU, today's exports need none: their text pooling is a batched MatMul
  (``t2i_stages.masking``). Older exports pool with ``ReduceSum``, which ONNX Runtime's CPU
  collapses for a batch of one into a 2-D reduction with another summation order (the sentence
  moves by ~2e-7); for them a call of one row gets a copy of it as a second row (``pair``). On
  a GPU, where cuBLAS/cuDNN choose kernels per shape, every call is padded to ``max_batch`` rows
  (``full``). ``warm_up`` checks the promise on the loaded model, falls back from ``none`` to
  ``pair`` where it does not hold, and reports the answer in ``/v1/model``.

Each call is one ``Deployment.run_all``: every stage's images and, for an export made with
``--attention``, the word-attention maps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2i_stages.export.runtime import Deployment, RunOutputs, draw_noise, load_deployment

from .config import ServeConfig


def rows_of(out: RunOutputs, start: int, stop: int) -> RunOutputs:
    """Rows ``start:stop`` of every output of a call."""
    return RunOutputs(
        [im[start:stop] for im in out.images],
        {s: a[start:stop] for s, a in out.attention.items()},
    )


def concat(parts: list[RunOutputs]) -> RunOutputs:
    """The rows of several calls, in order, as one output."""
    if len(parts) == 1:
        return parts[0]
    images = [np.concatenate(ims) for ims in zip(*(p.images for p in parts), strict=True)]
    stages = parts[0].attention
    return RunOutputs(images, {s: np.concatenate([p.attention[s] for p in parts]) for s in stages})


@dataclass
class CaptionTokens:
    """A caption as the model reads it: the tokens it sees, how many were cut off, warnings."""

    caption: str
    tokens: list[dict[str, Any]]  # {"word", "id", "known"}; known False = read as <unk>
    dropped: int  # token slots past the model's word limit (the caption was truncated)
    warnings: list[str]


class ServedModel:
    """A loaded deployment plus the batching rules (padding) the server runs it with."""

    def __init__(
        self, deployment: Deployment, padding: str, max_batch: int, fallback: str | None = None
    ):
        for p in (padding, fallback):
            if p is not None and p not in ("pair", "full", "none"):
                raise ValueError(f"padding must be 'pair', 'full' or 'none', not {p!r}")
        self.deployment = deployment
        self.padding = padding
        self.fallback = fallback  # what warm_up switches to if ``padding`` is not invariant
        self.max_batch = max_batch
        self.warm_up_report: dict[str, Any] | None = None

    @classmethod
    def load(cls, folder: str | Path, config: ServeConfig) -> ServedModel:
        dep = load_deployment(
            folder,
            config.provider,
            config.allow_cpu_fallback,
            config.threads,
            config.precision,
            spinning=config.spinning,
        )
        padding, fallback = config.padding_for(dep.device)
        return cls(dep, padding, config.max_batch, fallback)

    # ---------------------------------------------------------------------------- the model

    @property
    def manifest(self) -> dict[str, Any]:
        return self.deployment.manifest

    @property
    def resolutions(self) -> list[int]:
        return self.deployment.resolutions

    @property
    def max_words(self) -> int:
        return self.deployment.max_words

    @property
    def has_attention(self) -> bool:
        return self.deployment.has_attention

    @property
    def attention_stages(self) -> list[int]:
        return self.deployment.attention_stages

    # ------------------------------------------------------------------------ the inputs

    def describe(self, caption: str) -> CaptionTokens:
        """The tokens the model sees for ``caption`` (truncated to its word limit)."""
        dep = self.deployment
        tokens = dep.describe_tokens(caption)
        dropped = dep.count_tokens(caption) - len(tokens)
        return CaptionTokens(caption, tokens, dropped, dep.caption_warnings([caption]))

    def encode(self, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.deployment.tokenize(captions)

    def noise(self, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        return draw_noise(rows, self.deployment.z_dim, self.deployment.eps_dim, seed)

    # ------------------------------------------------------------------------- the calls

    def padded_rows(self, rows: int) -> int:
        """The batch size a call of ``rows`` rows is run at."""
        if self.padding == "full":
            return max(rows, self.max_batch)
        if self.padding == "pair":
            return max(rows, 2)
        return rows

    def run(
        self, ids: np.ndarray, mask: np.ndarray, z: np.ndarray, eps: np.ndarray | None
    ) -> RunOutputs:
        """One ONNX Runtime call for these rows (padded with copies of the last row)."""
        rows = ids.shape[0]
        extra = self.padded_rows(rows) - rows
        if extra:
            ids, mask, z = (
                np.concatenate([a, np.repeat(a[-1:], extra, 0)]) for a in (ids, mask, z)
            )
            if eps is not None:
                eps = np.concatenate([eps, np.repeat(eps[-1:], extra, 0)])
        out = self.deployment.run_all(ids, mask, z, eps)
        return rows_of(out, 0, rows) if extra else out

    def warm_up(self) -> dict[str, Any]:
        """Run the model once alone and once batched, and say whether a row came out equal;
        where it did not and a fallback padding is set, switch to it and check again."""
        report = self._probe()
        if not report["batch_invariant"] and self.fallback is not None:
            tried, diff = self.padding, report["max_abs_diff"]
            self.padding, self.fallback = self.fallback, None
            report = self._probe()
            report["fell_back"] = {"from": tried, "max_abs_diff": diff}
        report["padding"] = self.padding
        self.warm_up_report = report
        return report

    def _probe(self) -> dict[str, Any]:
        words = [w for w in self.deployment.tokenizer.itos[2:] if w.isalnum()]
        probe = " ".join((words * self.max_words)[: self.max_words]) or "a"
        others = max(2, self.max_batch) - 1
        ids, mask = self.encode([probe] * (others + 1))
        z, eps = self.noise(others + 1, 1)
        z1, eps1 = self.noise(1, 0)
        z[-1:] = z1
        if eps is not None and eps1 is not None:
            eps[-1:] = eps1
        t0 = time.perf_counter()
        alone = self.run(ids[-1:], mask[-1:], z1, eps1)
        t1 = time.perf_counter()
        batched = rows_of(self.run(ids, mask, z, eps), others, others + 1)
        t2 = time.perf_counter()
        pairs = list(zip(alone.images, batched.images, strict=True)) + [
            (alone.attention[s], batched.attention[s]) for s in alone.attention
        ]
        invariant = all(np.array_equal(a, b) for a, b in pairs)
        worst = max(float(np.abs(a - b).max()) for a, b in pairs)
        return {
            "batch_invariant": invariant,
            "max_abs_diff": worst,
            "probe_rows": others + 1,
            "alone_s": round(t1 - t0, 4),
            "batch_s": round(t2 - t1, 4),
        }

    # ------------------------------------------------------------------------- the card

    def card(self) -> dict[str, Any]:
        """``GET /v1/model``: what a client needs to know about the model behind the server."""
        m = self.manifest
        source = m.get("source", {}) or {}
        parity = {
            k: {x: v.get(x) for x in ("passed", "max_abs_diff", "rtol", "atol", "provider")}
            for k, v in (m.get("parity") or {}).items()
            if isinstance(v, dict) and "passed" in v
        }
        if (m.get("parity") or {}).get("checked") is False:
            parity = {"checked": False, "reason": m["parity"].get("reason")}
        return {
            "format": m.get("format"),
            "format_version": m.get("format_version"),
            "recipe": {
                "name": source.get("recipe_name"),
                "sha256": source.get("recipe_sha256"),
                "step": source.get("step"),
                "weights": source.get("weights"),
            },
            "stages": [
                {"stage": i, "resolution": r, "output": f"image_{i}"}
                for i, r in enumerate(self.resolutions)
            ],
            "attention": m.get("attention", []),
            "vocab_size": len(self.deployment.tokenizer),
            "max_words": self.max_words,
            "z_dim": self.deployment.z_dim,
            "eps_dim": self.deployment.eps_dim,
            "layout": m.get("layout"),
            "exporter": m.get("exporter"),
            "opset": m.get("opset"),
            "precisions": m.get("precisions"),
            "parity": parity,
            "versions": m.get("versions", {}),
            "providers": self.deployment.providers,
            "io_binding": self.deployment.io_binding,
        }
