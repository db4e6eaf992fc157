"""The ASGI app: ``create_app(export_dir) -> Starlette`` with the serving endpoints.

::

    from t2i_stages.serve import create_app
    app = create_app("deploy/", max_batch=16, max_delay_ms=10)   # any ASGI server runs it

Endpoints: ``POST /v1/generate``, ``GET /v1/model``, ``GET /healthz`` (alive), ``GET /readyz``
(model loaded and warmed up), ``GET /metrics`` (Prometheus text). Every error is a one-line JSON
object ``{"error": ..., "field": ...}`` with a 4xx status (a 503 while not ready or when the
queue is full, with ``Retry-After``); the body of a request is read with a size limit and a
time limit, so a large or slow body costs the server little. With a ``static_dir`` holding an
``index.html``, ``/`` serves it and ``/static/...`` its assets (the package's own ``static/``
folder by default, when it has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServeConfig, make_config
from .model import ServedModel
from .schema import RequestError, one_line, parse
from .service import Service

PACKAGE_STATIC = Path(__file__).resolve().parent / "static"
ROUTES = ("/v1/generate", "/v1/model", "/healthz", "/readyz", "/metrics", "/")
METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS")
REJECT_REASONS = {408: "slow_body", 413: "too_large", 415: "content_type", 503: "unavailable"}


def create_app(
    export_dir: str | Path,
    config: ServeConfig | None = None,
    *,
    model: ServedModel | None = None,
    static_dir: str | Path | None = PACKAGE_STATIC,
    **settings: Any,
) -> Starlette:
    """The serving app for a deployment folder. Settings are :class:`ServeConfig` fields,
    given as ``config`` or as keywords; ``model`` serves an already loaded model."""
    if config is None:
        config = make_config(**settings)
    elif settings:
        config = config.model_copy(update=settings)
    service = Service(export_dir, config, model)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route("/v1/generate", _generate, methods=["POST"]),
        Route("/v1/model", _model_card, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        *_static_routes(static_dir),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.service = service
    app.add_middleware(_MetricsMiddleware, service=service)
    return app


def _static_routes(folder: str | Path | None) -> list:
    """``/`` and ``/static`` from ``folder``, when it has an ``index.html`` (else none)."""
    if folder is None or not (Path(folder) / "index.html").is_file():
        return []
    index = Path(folder) / "index.html"

    async def page(request: Request) -> Response:
        return FileResponse(index, media_type="text/html")

    return [
        Route("/", page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(folder)), name="static"),
    ]


# --------------------------------------------------------------------------- endpoints


def _service(request: Request) -> Service:
    return request.app.state.service


def error_response(err: RequestError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


async def _generate(request: Request) -> Response:
    service = _service(request)
    try:
        # the body first, even when the content type is wrong: answering before it is read
        # and closing would make the kernel reset the connection under the client's feet
        body = await read_body(request, service.config)
        req = parse(body, request.headers.get("content-type"), service.config)
        reply, headers = await service.generate(req)
    except RequestError as err:
        if err.status in (408, 413):  # the body is not read to its end: close the connection
            err.headers.setdefault("Connection", "close")
        service.metrics.rejected.labels(reason=REJECT_REASONS.get(err.status, "invalid")).inc()
        return error_response(err)
    if isinstance(reply, bytes):
        return Response(reply, media_type="image/png", headers=headers)
    return JSONResponse(reply, headers=headers)


async def read_body(request: Request, config: ServeConfig) -> bytes:
    """The whole body, at most ``max_body_bytes`` (413) within ``body_timeout_s`` (408)."""
    limit = config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, "body", f"the body has {declared} bytes, more than this server's {limit}"
        )

    async def collect() -> bytes:
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise RequestError(413, "body", f"the body is over this server's {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), config.body_timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(
            408, "body", f"the body did not arrive within {config.body_timeout_s:g} s"
        ) from None
    except ClientDisconnect:
        raise RequestError(400, "body", "the client closed the connection mid-body") from None


async def _model_card(request: Request) -> Response:
    try:
        return JSONResponse(_service(request).card())
    except RequestError as err:
        return error_response(err)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    ready, body = _service(request).readiness()
    return JSONResponse(body, status_code=200 if ready else 503, headers=ready_headers(ready))


def ready_headers(ready: bool) -> dict[str, str]:
    return {} if ready else {"Retry-After": "1"}


async def _metrics(request: Request) -> Response:
    metrics = _service(request).metrics
    return Response(metrics.render(), media_type=metrics.content_type)


# ------------------------------------------------------------------------------ errors


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    field = {404: "path", 405: "method"}.get(exc.status_code, "request")
    what = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} not allowed"}
    message = what.get(exc.status_code, str(exc.detail))
    return JSONResponse(
        {"error": one_line(message), "field": field},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug, not a bad request: one line, no traceback to the client (the log has it)."""
    return JSONResponse(
        {"error": one_line(f"internal error: {type(exc).__name__}: {exc}"), "field": None},
        status_code=500,
    )


class _MetricsMiddleware:
    """Counts every response by route, method and status, and times it."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app = app
        self.metrics = service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            method = scope.get("method", "") if scope.get("method") in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
