"""Helpers for the serving tests: a live uvicorn server in a thread, and reply readers.

Servers run uvicorn in a thread of the test process on a socket bound to a free port of
127.0.0.1, so every request goes through real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from t2i_stages.serve.header_deadline import HeaderDeadlineProtocol


class LiveServer:
    """uvicorn serving ``app`` in a thread, with the header deadline ``serve()`` uses; ``url``,
    ``client`` (httpx), ``service``."""

    def __init__(self, app, ready: bool = True):
        self.app = app
        self.wait_ready = ready
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        protocol = HeaderDeadlineProtocol.with_timeout(app.state.service.config.header_timeout_s)
        config = uvicorn.Config(
            app, http=protocol, log_level="warning", lifespan="on", timeout_keep_alive=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def service(self):
        return self.app.state.service

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.02)
        if self.wait_ready:
            while self.client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the server did not get ready in 60 s"
                time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def generate(self, **body) -> httpx.Response:
        return self.client.post("/v1/generate", json=body)


def png_of(reply: dict, caption: int = 0, sample: int = 0, stage: int = -1) -> str:
    """The base64 PNG of one image of a JSON reply."""
    return reply["results"][caption]["samples"][sample]["images"][stage]["png"]
