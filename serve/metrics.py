"""``GET /metrics``: the server's counters and histograms in the Prometheus text format.

prometheus_client with a registry per app (not the process-global one), so two apps in one
process (the tests, or an embedding application) never share or clash over series. Request
series are labelled by route (``/v1/generate``), never by the raw path, so a client sending
random paths cannot grow the label set.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# seconds: from a millisecond (a health check) to a minute (a long queue on a slow machine)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """Every series the server exports; ``render()`` gives the text a scraper reads."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "t2i_requests", "HTTP requests answered", ["route", "method", "code"], registry=r
        )
        self.latency = Histogram(
            "t2i_request_seconds",
            "time from the request's arrival to its response",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "t2i_queue_seconds",
            "time a generate request waited in the queue before its first rows ran",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.run_seconds = Histogram(
            "t2i_batch_run_seconds",
            "time of one ONNX Runtime call (a batch)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "t2i_batch_rows",
            "images (rows) in one ONNX Runtime call, before padding",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "t2i_batch_requests",
            "requests merged into one ONNX Runtime call",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.queue_rows = Gauge("t2i_queue_rows", "images waiting for a batch now", registry=r)
        self.images = Counter("t2i_images", "images generated", registry=r)
        self.rejected = Counter(
            "t2i_rejected",
            "generate requests refused before running (bad request, full queue, ...)",
            ["reason"],
            registry=r,
        )
        self.run_errors = Counter("t2i_batch_errors", "ONNX Runtime calls that raised", registry=r)
        self.ready = Gauge("t2i_ready", "1 once the model is loaded and warmed up", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
