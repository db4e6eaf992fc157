"""Bad requests never take the server down: each is a 4xx with a one-line JSON error naming
the field, and a hypothesis fuzz of malformed bodies gets no 5xx and leaves /healthz answering.
All through real HTTP on localhost (raw sockets for the slow and the oversized bodies)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from serve_helpers import LiveServer

from t2i_stages.serve import create_app

FIELDS = ("captions", "n", "seed", "stages", "attention", "format")


@pytest.fixture(scope="module")
def strict(demo_deploy):
    """A server with small limits, so the limits are cheap to reach."""
    app = create_app(
        demo_deploy,
        provider="cpu",
        threads=1,
        max_n=4,
        max_captions=3,
        max_images=6,
        max_queue=64,
        max_body_bytes=2048,
        body_timeout_s=0.5,
        header_timeout_s=0.5,
        max_caption_chars=200,
    )
    with LiveServer(app) as server:
        yield server


def _check_error(r, status: int, field: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert "\n" not in r.text.strip()
    body = r.json()
    assert set(body) == {"error", "field"} and body["field"] == field, body
    assert body["error"]
    return body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"captions": []}, "captions", "at least 1"),
        ({"captions": [""]}, "captions[0]", "empty or whitespace"),
        ({"captions": ["a red circle", " \t\n "]}, "captions[1]", "empty or whitespace"),
        ({"captions": ["!!! ???"]}, "captions[0]", "no word"),
        ({"captions": ["x" * 201]}, "captions[0]", "201 characters"),
        ({"captions": ["a", "b", "c", "d"]}, "captions", "4 captions, more than"),
        ({"captions": "a red circle"}, "captions", "valid list"),
        ({"captions": [3]}, "captions[0]", "valid string"),
        ({}, "captions", "required"),
        ({"captions": ["a"], "n": 0}, "n", "between 1 and 4"),
        ({"captions": ["a"], "n": -3}, "n", "between 1 and 4"),
        ({"captions": ["a"], "n": 5}, "n", "between 1 and 4"),
        ({"captions": ["a", "b"], "n": 4}, "n", "8 images, more than"),
        ({"captions": ["a"], "n": 1.0}, "n", "valid integer"),
        ({"captions": ["a"], "n": "2"}, "n", "valid integer"),
        ({"captions": ["a"], "n": True}, "n", "valid integer"),
        ({"captions": ["a"], "seed": 1.5}, "seed", "valid integer"),
        ({"captions": ["a"], "seed": "7"}, "seed", "valid integer"),
        ({"captions": ["a"], "seed": -1}, "seed", "between 0"),
        ({"captions": ["a"], "seed": 2**64}, "seed", "between 0"),
        ({"captions": ["a"], "stages": "first"}, "stages", "'all' or 'last'"),
        ({"captions": ["a"], "attention": "yes"}, "attention", "valid boolean"),
        ({"captions": ["a"], "format": "jpeg"}, "format", "'png' or 'json'"),
        ({"captions": ["a"], "format": "png", "stages": "all"}, "format", "needs format 'json'"),
        ({"captions": ["a"], "colour": "red"}, "colour", "unknown field"),
        ({"captions": ["a red circle \ud800"]}, "captions[0]", "lone surrogate"),
        ({"captions": ["a"], "\udc00x": 1}, "\\udc00x", "unknown field"),
    ],
)
def test_each_bad_field_is_a_422_naming_it(strict, body, field, words):
    raw = json.dumps(body).encode()  # ASCII, lone surrogates escaped (httpx's json= cannot)
    headers = {"content-type": "application/json"}
    err = _check_error(strict.client.post("/v1/generate", content=raw, headers=headers), 422, field)
    assert words in err["error"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "field"),
    [
        (b'{"captions": ["a red circle"]', "application/json", 400, "body"),
        (b"", "application/json", 400, "body"),
        (b'{"captions": ["caf\xe9"]}', "application/json", 400, "body"),  # latin-1, not UTF-8
        (b"\xff\xfe{\x00}\x00", "application/json", 400, "body"),
        (b'["a red circle"]', "application/json", 422, "body"),
        (b"null", "application/json", 422, "body"),
        (b'{"captions": ["a"], "seed": 1' + b"0" * 3000 + b"}", "application/json", 413, "body"),
        (b'{"captions": ["a"]}', "text/plain", 415, "content-type"),
        (b'{"captions": ["a"]}', "application/json; charset=latin-1", 415, "content-type"),
        (b'{"captions": ["a"]}', "", 415, "content-type"),
        (b"captions=a", "application/x-www-form-urlencoded", 415, "content-type"),
    ],
)
def test_bad_bodies_and_content_types(strict, raw, content_type, status, field):
    headers = {"content-type": content_type} if content_type else {}
    r = strict.client.post("/v1/generate", content=raw, headers=headers)
    _check_error(r, status, field)


def test_json_that_python_refuses_to_read_is_a_400(demo_deploy):
    """Nesting past the recursion limit and an integer of over 4300 digits, within the limit."""
    app = create_app(demo_deploy, provider="cpu", threads=1, max_body_bytes=60_000)
    json_type = {"content-type": "application/json"}
    with LiveServer(app) as live:
        nested = live.client.post(
            "/v1/generate", content=b"[" * 25_000 + b"]" * 25_000, headers=json_type
        )
        assert "recursion" in _check_error(nested, 400, "body")["error"]
        huge = b'{"captions": ["a"], "seed": ' + b"9" * 5000 + b"}"
        big = live.client.post("/v1/generate", content=huge, headers=json_type)
        assert "digits" in _check_error(big, 400, "body")["error"]
        assert live.client.get("/healthz").status_code == 200


def test_json_content_type_with_utf8_charset_is_accepted(strict):
    r = strict.client.post(
        "/v1/generate",
        content='{"captions": ["a red circle café"]}'.encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )
    assert r.status_code == 200
    assert [t["word"] for t in r.json()["results"][0]["tokens"]] == ["a", "red", "circle", "caf"]


def _raw(port: int, data: bytes, read_after: float = 0.0, timeout: float = 30.0) -> bytes:
    """Send ``data`` on a fresh connection, wait ``read_after`` s, read what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        time.sleep(read_after)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunks[-1]:
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def _head(path: str, length: int | None, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + extra + "\r\n\r\n").encode()


def test_a_slow_body_gets_408_and_others_are_served_meanwhile(strict):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as sock:
        sock.sendall(_head("/v1/generate", 100) + b'{"captions": ["a r')
        assert strict.client.get("/healthz").status_code == 200  # not blocked by the slow one
        assert strict.generate(captions=["a red circle"]).status_code == 200
        chunks = [sock.recv(65536)]
        while chunks[-1]:  # the server closes the connection after its 408
            chunks.append(sock.recv(65536))
    took = time.perf_counter() - start
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["field"] == "body"
    assert took >= 0.5  # --body-timeout-s; no upper bound on a shared, loaded machine
    assert strict.client.get("/healthz").status_code == 200


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = [sock.recv(65536)]
    while chunks[-1]:
        chunks.append(sock.recv(65536))
    return b"".join(chunks)


def test_slow_headers_get_408_and_others_are_served_meanwhile(strict):
    """Slowloris: a request line and half a header, then nothing (uvicorn alone would wait for
    ever); the deadline is --header-timeout-s."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
        assert strict.client.get("/healthz").status_code == 200  # not blocked by the slow one
        reply = _read_until_closed(sock)
    took = time.perf_counter() - start
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {
        "error": "the request line and headers did not arrive within 0.5 s",
        "field": "headers",
    }
    assert took >= 0.5
    assert strict.client.get("/healthz").status_code == 200


def test_the_header_deadline_restarts_for_each_request_of_a_kept_alive_connection(strict):
    """A whole request is answered; the next one's head on the same connection has its own
    deadline, counted from the previous response."""
    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as sock:
        time.sleep(0.3)  # within the first deadline (0.5 s from connecting)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(0.3)  # 0.6 s after connecting: past the first deadline, within the second
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        second = _read_until_closed(sock)
    assert second.startswith(b"HTTP/1.1 408"), second


def test_a_connection_that_sends_nothing_is_closed_without_a_reply(strict):
    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as sock:
        assert _read_until_closed(sock) == b""  # closed by the server, not by the 30-s timeout
    assert strict.client.get("/healthz").status_code == 200


def test_an_oversized_body_is_refused_by_length_and_by_counting(strict):
    declared = _raw(strict.port, _head("/v1/generate", 10_000_000) + b"{")
    assert declared.startswith(b"HTTP/1.1 413"), declared
    assert json.loads(declared.partition(b"\r\n\r\n")[2])["field"] == "body"
    chunk = b"x" * 1000
    chunked = _head("/v1/generate", None, "\r\nTransfer-Encoding: chunked")
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    counted = _raw(strict.port, chunked)
    assert counted.startswith(b"HTTP/1.1 413"), counted
    assert strict.client.get("/healthz").status_code == 200


def test_garbage_on_the_socket_leaves_the_server_answering(strict):
    for junk in (
        b"\x00\xff garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/generate\r\n\r\n",
    ):
        _raw(strict.port, junk, timeout=2)
    assert strict.client.get("/healthz").status_code == 200


# ------------------------------------------------------------------------------ fuzzing

# lone surrogates: valid in JSON ("\ud800"), not in UTF-8; hypothesis's text() leaves them out
_surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from(["a red circle ", "", "star"]), _surrogates),
    st.sampled_from(["all", "last", "png", "json", "a red circle", " ", ""]),
)
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | _surrogates, inner, max_size=4)
    ),
    max_leaves=12,
)
_captions = st.one_of(
    st.lists(st.text(max_size=40), max_size=4),
    st.lists(st.sampled_from(["a red circle", "a blue star", "", "zzqq"]), min_size=1, max_size=3),
    _json,
)
_request = st.fixed_dictionaries(
    {},
    optional={
        "captions": _captions,
        "n": st.one_of(st.integers(-2, 6), _leaves),
        "seed": st.one_of(st.integers(-5, 2**65), _leaves),
        "stages": st.one_of(st.sampled_from(["all", "last"]), _leaves),
        "attention": _leaves,
        "format": st.one_of(st.sampled_from(["png", "json"]), _leaves),
        "extra": _leaves,
    },
)


_valid = st.fixed_dictionaries(
    {
        "captions": st.lists(
            st.sampled_from(["a red circle", "a blue star", "zzqq a square"])
            | st.builds(
                lambda a, b: a + b,
                st.sampled_from(["a red circle ", " ", ""]),
                st.text(max_size=12) | _surrogates,
            ),
            min_size=1,
            max_size=2,
        ),
        "n": st.integers(1, 3),
        "seed": st.integers(0, 2**63 - 1),
    },
    optional={"stages": st.sampled_from(["all", "last"]), "attention": st.just(False)},
)


@st.composite
def _near_valid(draw) -> dict:
    """A valid request, or one with a field replaced by something else (or removed)."""
    body = dict(draw(_valid))
    if draw(st.booleans()):
        key = draw(st.sampled_from([*FIELDS, "extra"]))
        if draw(st.booleans()) and key in body:
            del body[key]
        else:
            body[key] = draw(_json)
    return body


def _encode(value) -> bytes:
    return json.dumps(value).encode()


def _mangle(data: bytes, cut: int, junk: bytes) -> bytes:
    cut = cut % (len(data) + 1)
    return data[:cut] + junk + data[cut:]


_bodies = st.one_of(
    _near_valid().map(_encode),
    _request.map(_encode),
    _json.map(_encode),
    st.builds(
        _mangle, _request.map(_encode), st.integers(0, 400), st.binary(min_size=1, max_size=6)
    ),
    st.binary(max_size=300),
)
_content_types = st.sampled_from(
    [
        "application/json",
        "application/json",
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=ascii",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_bodies, content_type=_content_types)
def test_fuzzed_bodies_never_get_a_5xx(strict, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = strict.client.post("/v1/generate", content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text, body)
    event(f"status {r.status_code}")
    if r.status_code != 200:
        assert 400 <= r.status_code < 500
        err = r.json()
        assert set(err) == {"error", "field"} and "\n" not in r.text.strip()
    assert strict.client.get("/healthz").status_code == 200


def test_after_the_fuzz_the_server_still_generates(strict):
    assert strict.client.get("/healthz").json() == {"status": "ok"}
    assert strict.generate(captions=["a red circle"], seed=1).status_code == 200
    assert strict.client.get("/readyz").status_code == 200
