"""``POST /v1/generate``'s body: parsed, typed and checked against the server's limits.

Every way a body can be wrong ends in a :class:`RequestError` with an HTTP status and the field
it is about, never in an exception the server did not expect: the body must be UTF-8 JSON (an
object), every field has a strict type (``"seed": 1.5``, ``"n": "2"`` and ``"attention": 1``
are refused, not coerced), and the limits of :class:`~.config.ServeConfig` apply. Captions
longer than the model's word limit are *truncated with a warning* (as ``t2i-stages generate``
does), not refused; see docs/deployment.md, "Serving".
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ServeConfig

SEED_MAX = 2**63 - 1  # numpy's generators take any non-negative int; keep it to a signed 64 bit


class RequestError(Exception):
    """A bad request: ``status`` (4xx), the ``field`` it names and a one-line message."""

    def __init__(self, status: int, field: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.field = one_line(field, 100)  # a client's key may hold anything, even surrogates
        self.message = one_line(message)
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


def one_line(text: str, limit: int = 300) -> str:
    """``text`` without line breaks or control characters, cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GenerateRequest(BaseModel):
    """The fields of a generate request (types only; the limits are checked by ``parse``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    captions: list[str] = Field(min_length=1)
    n: int = 1
    seed: int | None = None  # None: the server picks one and returns it
    stages: Literal["all", "last"] = "last"
    attention: bool = False
    format: Literal["png", "json"] = "json"

    @property
    def rows(self) -> int:
        """Images the model makes for this request (caption-major: c0 s0..s(n-1), c1 ...)."""
        return len(self.captions) * self.n


def check_content_type(value: str | None) -> None:
    """``application/json``, optionally with ``charset=utf-8``; anything else is a 415."""
    if not value:
        raise RequestError(415, "content-type", "Content-Type must be application/json")
    kind, _, params = value.partition(";")
    if kind.strip().lower() != "application/json":
        raise RequestError(
            415, "content-type", f"Content-Type must be application/json, not {kind.strip()!r}"
        )
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise RequestError(415, "content-type", f"charset must be utf-8, not {val.strip()!r}")


def decode_json(body: bytes) -> object:
    """The JSON value of a UTF-8 body (400 naming ``body`` when it is not one)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, "body", f"the body is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    if not text.strip():
        raise RequestError(400, "body", "the body is empty; send a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, "body", f"the body is not JSON: {exc.msg} at char {exc.pos}"
        ) from None
    except (ValueError, RecursionError) as exc:  # an int of >4300 digits, nesting too deep
        raise RequestError(400, "body", f"the body is not JSON this server reads: {exc}") from None


def _field_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def parse(body: bytes, content_type: str | None, config: ServeConfig) -> GenerateRequest:
    """A checked :class:`GenerateRequest` from a raw body, or a :class:`RequestError`."""
    check_content_type(content_type)
    data = decode_json(body)
    if not isinstance(data, dict):
        raise RequestError(422, "body", f"the body must be a JSON object, not {_kind(data)}")
    unknown = [k for k in data if k not in GenerateRequest.model_fields]
    if unknown:
        known = ", ".join(GenerateRequest.model_fields)
        raise RequestError(422, unknown[0], f"{unknown[0]}: unknown field (the fields: {known})")
    captions = data.get("captions")
    if isinstance(captions, list) and len(captions) > config.max_captions:
        raise RequestError(
            422,
            "captions",
            f"{len(captions)} captions, more than this server's {config.max_captions}",
        )
    try:
        req = GenerateRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field_name(tuple(err["loc"]))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise RequestError(422, field, f"{field}: {msg}") from None
    _check_limits(req, config)
    return req


def _check_limits(req: GenerateRequest, config: ServeConfig) -> None:
    for i, text in enumerate(req.captions):
        if not text.strip():
            raise RequestError(422, f"captions[{i}]", f"captions[{i}] is empty or whitespace")
        if not text.isascii():
            try:  # JSON may escape a lone surrogate (\ud800), which is no Unicode text
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError(
                    422, f"captions[{i}]", f"captions[{i}] is not valid Unicode (a lone surrogate)"
                ) from None
        if len(text) > config.max_caption_chars:
            raise RequestError(
                422,
                f"captions[{i}]",
                f"captions[{i}] has {len(text)} characters, more than this server's "
                f"{config.max_caption_chars}",
            )
    if not 1 <= req.n <= config.max_n:
        raise RequestError(422, "n", f"n must be between 1 and {config.max_n}, not {req.n}")
    if req.rows > config.max_images:
        raise RequestError(
            422,
            "n",
            f"{len(req.captions)} caption(s) x n {req.n} = {req.rows} images, more than this "
            f"server's {config.max_images} per request",
        )
    if req.seed is not None and not 0 <= req.seed <= SEED_MAX:
        raise RequestError(422, "seed", f"seed must be between 0 and 2**63-1, not {req.seed}")
    if req.format == "png" and (req.stages == "all" or req.attention):
        asked = "stages 'all'" if req.stages == "all" else "attention"
        raise RequestError(
            422,
            "format",
            f"format 'png' returns one grid of the last stage; {asked} needs format 'json'",
        )


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
