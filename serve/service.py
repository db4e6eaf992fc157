"""The server's state and life: the model, its batcher, readiness, and one generate call.

``start()`` (the app's lifespan) loads the deployment if none was given, starts the warm-up in
the background and returns, so the server answers ``/healthz`` (alive) at once and
``/readyz`` with 503 until the warm-up run succeeded. Generate requests that arrive before
that wait in the queue; the batcher starts once the model has answered.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from t2i_stages.export.runtime import read_manifest

from .batcher import MicroBatcher, QueueFull, ShuttingDown
from .config import ServeConfig
from .metrics import ServeMetrics
from .model import ServedModel
from .reply import json_reply, png_reply
from .schema import GenerateRequest, RequestError, one_line

log = logging.getLogger("t2i_stages.serve")


class Service:
    """One app's model, batcher and metrics."""

    def __init__(
        self, export_dir: str | Path, config: ServeConfig, model: ServedModel | None = None
    ):
        self.export_dir = Path(export_dir)
        self.config = config
        if model is None:
            read_manifest(self.export_dir)  # a wrong folder fails here, before any serving
        self.model = model
        self.metrics = ServeMetrics()
        self.batcher: MicroBatcher | None = None
        self.ready = False
        self.error: str | None = None
        self._warm_task: asyncio.Task | None = None

    # ----------------------------------------------------------------------- life cycle

    async def start(self) -> None:
        if self.model is None:
            self.model = await asyncio.to_thread(ServedModel.load, self.export_dir, self.config)
        self.batcher = MicroBatcher(
            self.model.run,
            self.config.max_batch,
            self.config.max_delay_ms / 1000.0,
            self.config.max_queue,
            self.metrics,
        )
        self._warm_task = asyncio.get_running_loop().create_task(self._warm_up())

    async def _warm_up(self) -> None:
        assert self.model is not None and self.batcher is not None
        try:
            report = await asyncio.to_thread(self.model.warm_up)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log
            self.error = one_line(f"the warm-up run failed: {type(exc).__name__}: {exc}")
            log.error("%s", self.error)
            return
        if not report["batch_invariant"]:
            log.warning(
                "a row batched differs from the row alone by %.3g on this provider: batched "
                "results may differ from unbatched ones (padding %r)",
                report["max_abs_diff"],
                self.model.padding,
            )
        self.batcher.start(report["batch_s"])
        self.ready = True
        self.metrics.ready.set(1)
        log.info("ready: %s", report)

    async def stop(self) -> None:
        if self._warm_task is not None and not self._warm_task.done():
            self._warm_task.cancel()
        if self.batcher is not None:
            await self.batcher.close()
        self.ready = False
        self.metrics.ready.set(0)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        if self.ready:
            assert self.model is not None
            return True, {"ready": True, "warm_up": self.model.warm_up_report}
        if self.error:
            return False, {"error": f"not ready: {self.error}", "field": "model"}
        return False, {"error": "not ready: the model is warming up", "field": "model"}

    def card(self) -> dict[str, Any]:
        if self.model is None:
            raise RequestError(503, "model", "the model is loading", {"Retry-After": "1"})
        c = self.config
        return {
            **self.model.card(),
            "batching": {
                "max_batch": c.max_batch,
                "max_delay_ms": c.max_delay_ms,
                "max_queue": c.max_queue,
                "padding": self.model.padding,
                "warm_up": self.model.warm_up_report,
            },
            "limits": {
                "max_n": c.max_n,
                "max_captions": c.max_captions,
                "max_images": c.max_images,
                "max_caption_chars": c.max_caption_chars,
                "max_body_bytes": c.max_body_bytes,
                "body_timeout_s": c.body_timeout_s,
                "long_captions": f"truncated to {self.model.max_words} words, with a warning",
            },
        }

    # ------------------------------------------------------------------------- generate

    async def generate(self, req: GenerateRequest) -> tuple[Any, dict[str, str]]:
        """The reply (a dict for JSON, bytes for PNG) and its headers."""
        if self.error:
            raise RequestError(503, "model", f"not ready: {self.error}")
        if self.model is None or self.batcher is None:
            raise RequestError(503, "model", "the model is loading", {"Retry-After": "1"})
        model = self.model
        if req.attention and not model.has_attention:
            raise RequestError(
                422,
                "attention",
                "attention: this model was exported without attention outputs "
                "(export it with --attention)",
            )
        captions = [model.describe(c) for c in req.captions]
        for i, cap in enumerate(captions):
            if not cap.tokens:
                raise RequestError(
                    422, f"captions[{i}]", f"captions[{i}] has no word this model can read"
                )
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        t0 = time.perf_counter()
        ids, mask = model.encode([c for c in req.captions for _ in range(req.n)])
        z, eps = model.noise(req.rows, seed)
        try:
            job = self.batcher.submit(ids, mask, z, eps)
        except QueueFull as exc:
            raise RequestError(
                503, "queue", str(exc), {"Retry-After": str(exc.retry_after)}
            ) from None
        except ShuttingDown as exc:
            raise RequestError(503, "server", str(exc)) from None
        try:
            out = await job.future
        except ShuttingDown as exc:
            raise RequestError(503, "server", str(exc)) from None
        self.metrics.images.inc(req.rows)
        queue_s = (job.started or t0) - job.enqueued
        headers = {"X-Seed": str(seed), "X-Batch-Rows": ",".join(map(str, job.calls))}
        if req.format == "png":
            return await asyncio.to_thread(png_reply, req, out), headers
        extra = {
            "batch": {"calls": job.calls},
            "timing": {
                "queue_ms": round(queue_s * 1000, 3),
                "run_ms": round(job.run_s * 1000, 3),
            },
        }
        body = await asyncio.to_thread(
            json_reply, req, seed, captions, out, model.resolutions, extra
        )
        return body, headers
