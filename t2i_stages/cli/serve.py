"""`t2i-stages serve EXPORT_DIR`: an HTTP server for a deployment folder (ONNX Runtime, no torch).

A thin layer over :func:`t2i_stages.serve.server.serve`; the endpoints, the batching and the
limits are described in docs/deployment.md ("Serving").
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an ONNX deployment folder over HTTP (batched, torch-free)",
        description="Serve a folder written by `t2i-stages export` over HTTP: POST /v1/generate, "
        "GET /v1/model, /healthz, /readyz and /metrics (Prometheus). Concurrent requests are "
        "merged into one ONNX Runtime call of up to --max-batch images, waiting at most "
        "--max-delay-ms for batch-mates; the same seed gives the same images alone or batched. "
        "Needs the serve extra (pip install 't2i-stages[serve]').",
    )
    p.add_argument("export_dir", type=Path, help="deployment folder (with model.json)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000; 0 = any free one)")
    p.add_argument(
        "--provider",
        choices=("auto", "cpu", "cuda", "tensorrt"),
        default="auto",
        help="ONNX Runtime provider (auto: CUDA when usable here, else the CPU)",
    )
    p.add_argument(
        "--allow-cpu-fallback",
        action="store_true",
        default=None,
        help="run on the CPU (with a warning) when the requested provider is unavailable",
    )
    p.add_argument("--precision", choices=("fp32", "fp16"), default=None, help="graphs (fp32)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ONNX Runtime's idle threads busy-wait for work (ONNX Runtime's default; off here, "
        "which leaves the cores to the server between calls)",
    )
    p.add_argument("--max-batch", type=int, default=16, help="images per ONNX Runtime call (16)")
    p.add_argument(
        "--max-delay-ms", type=float, default=10.0, help="longest wait for batch-mates (10 ms)"
    )
    p.add_argument("--max-queue", type=int, default=None, help="images waiting before 503 (256)")
    p.add_argument(
        "--padding",
        choices=("auto", "pair", "full", "none"),
        default=None,
        help="batch shapes: none = as they come, pair = never one row (older CPU exports), "
        "full = always --max-batch rows (GPU); auto: none on the CPU (pair where the warm-up "
        "finds a lone row differs), full on a GPU",
    )
    p.add_argument("--workers", type=int, default=1, help="server processes (1)")
    p.add_argument("--max-n", type=int, default=None, help="samples per caption (16)")
    p.add_argument("--max-captions", type=int, default=None, help="captions per request (16)")
    p.add_argument("--max-images", type=int, default=None, help="captions x n per request (64)")
    p.add_argument("--max-body-bytes", type=int, default=None, help="request body limit (65536)")
    p.add_argument(
        "--body-timeout-s", type=float, default=None, help="time to send a body, else 408 (10)"
    )
    p.add_argument(
        "--header-timeout-s",
        type=float,
        default=None,
        help="time to send the request line and headers, else 408 (10)",
    )
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="uvicorn's log level (info)",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..serve.server import serve

    serve(
        args.export_dir,
        host=args.host,
        port=args.port,
        provider=args.provider,
        max_batch=args.max_batch,
        max_delay_ms=args.max_delay_ms,
        workers=args.workers,
        log_level=args.log_level,
        allow_cpu_fallback=args.allow_cpu_fallback,
        precision=args.precision,
        threads=args.threads,
        spinning=args.spinning,
        max_queue=args.max_queue,
        padding=args.padding,
        max_n=args.max_n,
        max_captions=args.max_captions,
        max_images=args.max_images,
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.body_timeout_s,
        header_timeout_s=args.header_timeout_s,
    )
    return 0
