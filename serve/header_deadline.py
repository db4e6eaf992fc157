"""A deadline on the request line and headers: uvicorn's HTTP protocol with a 408 for slow heads.

Why: uvicorn times out an idle keep-alive connection and our app times out a slow *body*
(``body_timeout_s``), but a client that opens a connection and sends its request line and
headers a byte at a time (slowloris) holds a connection for ever, and enough of them exhaust
the server's file descriptors. uvicorn has no setting for it, so this subclasses the protocol
uvicorn would pick itself (httptools where installed, as the ``serve`` extra does, else h11)
and arms a timer:

- when a connection opens, and when a response completes (for the next request on a
  keep-alive connection); an active request (``self.cycle`` not complete) is never cut;
- when it fires while the head of a request is still incomplete, the client gets a ``408``
  with the server's one-line JSON error (``field: "headers"``) and the connection is closed;
  a connection that sent nothing at all is just closed (uvicorn's keep-alive timeout usually
  closes those first).

``uvicorn.Config(app, http=HeaderDeadlineProtocol.with_timeout(10.0))`` uses it; ``serve()``
does that. Worker processes of ``--workers N`` get the module-level class (uvicorn pickles its
config by reference) and read the timeout from the settings in ``T2I_SERVE_SETTINGS``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .config import ServeConfig
from .server import settings_from_env

logger = logging.getLogger("uvicorn.error")


@functools.cache
def _timeout_from_env() -> float:
    """A worker process's ``header_timeout_s`` (the default outside workers), read once."""
    settings = settings_from_env()
    return (settings[1] if settings is not None else ServeConfig()).header_timeout_s


def timeout_reply(timeout_s: float) -> bytes:
    """The raw HTTP/1.1 408 this protocol writes: the app's ``{"error", "field"}`` JSON."""
    body = json.dumps(
        {
            "error": f"the request line and headers did not arrive within {timeout_s:g} s",
            "field": "headers",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol, with a deadline on each request's line and headers."""

    header_timeout_s: float | None = None  # None: from T2I_SERVE_SETTINGS, else the default

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_started = False  # bytes of a request whose head is not complete yet
        self._timeout_s = (
            self.header_timeout_s if self.header_timeout_s is not None else _timeout_from_env()
        )

    @classmethod
    def with_timeout(cls, timeout_s: float) -> type[HeaderDeadlineProtocol]:
        """A subclass with this deadline (for one process; worker processes use the env)."""
        return type(cls.__name__, (cls,), {"header_timeout_s": float(timeout_s)})

    def _waiting_for_head(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_started = False
        self._deadline = self.loop.call_later(self._timeout_s, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._waiting_for_head():
            return
        if self._head_started:
            client = f"{self.client[0]}:{self.client[1]} " if self.client else ""
            logger.warning(
                "%s408: request line and headers not complete within %g s",
                client,
                self._timeout_s,
            )
            self.transport.write(timeout_reply(self._timeout_s))
        self.transport.close()

    # uvicorn's protocol interface
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._head_started = True
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
