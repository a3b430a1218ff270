"""`support serve` against slow or idle clients, over real sockets: a server started by the
command on a free port, with short timeouts and a small concurrency limit set by its flags."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

IDLE, REQUEST, LIMIT = 1, 1, 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(built_kb, tmp_path_factory):
    """``(host, port)`` of `support serve` run as a user runs it, stopped (SIGTERM) after."""
    kb = tmp_path_factory.mktemp("serve_timeouts") / "kb"
    shutil.copytree(built_kb, kb)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_HOME": str(kb.parent / "home")}
    env.pop("TUNESMITH_SUPPORT_TOKEN", None)
    command = [sys.executable, "-m", "tunesmith.cli", "support", "serve", "--kb", str(kb)]
    command += ["--port", str(port), "--idle-timeout", str(IDLE)]
    command += ["--request-timeout", str(REQUEST), "--limit-concurrency", str(LIMIT)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield ("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _connect(server) -> socket.socket:
    sock = socket.create_connection(server, timeout=10)
    return sock


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (reads until end of stream)."""
    start = time.monotonic()
    while sock.recv(4096):
        pass
    return time.monotonic() - start


def _get_health(server) -> tuple[int, float]:
    start = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = int(_read_response(sock)[0].split()[1])
    return status, time.monotonic() - start


def _read_response(sock: socket.socket) -> tuple[str, dict]:
    """The status line and JSON body of one response (the server closes after it)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), json.loads(body) if body else {}


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(server):
    # uvicorn armed its keep-alive timer only after an answer: this one stayed open for good.
    with _connect(server) as idle:
        assert _closed_after(idle) < IDLE + 3


def test_a_client_that_never_finishes_its_headers_is_closed_after_the_request_timeout(server):
    with _connect(server) as slow:
        slow.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert _closed_after(slow) < REQUEST + 3


def test_a_client_that_never_sends_its_body_gets_a_408_and_holds_no_one_else(server):
    with _connect(server) as stalled:
        stalled.sendall(
            b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"quest'
        )
        time.sleep(0.2)
        status, seconds = _get_health(server)
        assert status == 200 and seconds < 1  # answered while the body is awaited
        head, body = _read_response(stalled)
    assert head.startswith("HTTP/1.1 408")
    assert body["code"] == "request_timeout" and body["errors"] == []
    assert body["detail"] == f"the request body did not arrive within {REQUEST} seconds"


def test_past_the_concurrency_limit_a_request_is_a_503_in_the_error_shape(server):
    idle = [_connect(server) for _ in range(LIMIT)]
    try:
        time.sleep(0.2)  # the server has accepted them all
        with _connect(server) as late:
            late.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head, body = _read_response(late)
    finally:
        for sock in idle:
            sock.close()
    assert head.startswith("HTTP/1.1 503") and "retry-after: 1" in head.lower()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "service_unavailable" and body["errors"] == []
    assert body["detail"].startswith(f"the server is busy ({LIMIT} connections or requests")
    time.sleep(0.2)
    assert _get_health(server)[0] == 200  # the idle ones gone, it answers again


@pytest.mark.parametrize(
    "flag, value",
    [("--idle-timeout", "0"), ("--request-timeout", "-1"), ("--limit-concurrency", "0")],
)
def test_serve_refuses_a_bad_timeout_or_limit_before_the_model_loads(cli, kb_copy, flag, value):
    result = cli("support", "serve", "--kb", str(kb_copy), flag, value)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert flag in result.output


def test_headers_over_the_limit_are_a_431_in_the_error_shape_even_in_one_read(server):
    """h11 limited headers only while incomplete: 20 KB of them in one read were taken."""
    from tunesmith_support.serve_limits import MAX_HEADER_BYTES

    def health_with(header: bytes) -> tuple[str, dict]:
        with _connect(server) as sock:
            sock.sendall(
                b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + header
                + b"\r\nConnection: close\r\n\r\n"
            )  # fmt: skip
            return _read_response(sock)

    assert health_with(b"a" * 8000)[0].startswith("HTTP/1.1 200")
    head, body = health_with(b"a" * 20_000)
    assert head.startswith("HTTP/1.1 431") and "connection: close" in head.lower()
    assert body["code"] == "headers_too_large" and body["errors"] == []
    assert body["detail"] == f"the request's headers are over {MAX_HEADER_BYTES:,} bytes"
    assert _get_health(server)[0] == 200


def test_the_503_past_the_concurrency_limit_carries_the_cors_headers():
    """A widget on another origin could not read the 503 (nor its Retry-After): a CORS error."""
    import asyncio

    from tunesmith_support.serve_limits import _Overloaded

    class Crowded:
        connections, tasks = set(range(5)), set()

    async def never(scope, receive, send):
        raise AssertionError("the API ran past the limit")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/ask",
        "headers": [(b"origin", b"https://shop.example"), (b"host", b"127.0.0.1")],
    }
    busy = _Overloaded(never, Crowded(), 4, ["https://shop.example"])
    asyncio.run(busy(scope, receive, send))
    headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
    assert sent[0]["status"] == 503
    assert headers["access-control-allow-origin"] == "https://shop.example"
    assert "retry-after" in headers["access-control-expose-headers"].lower()
    assert json.loads(sent[1]["body"])["code"] == "service_unavailable"
