"""How long ``support serve`` waits for a client, and how many it serves at once.

uvicorn (0.55, its h11 protocol) closes a kept-alive connection only after an answer: a client
that connects and sends nothing, or half a request line, held its connection for good, and one
that sent headers but never its body held a request (and a shutdown) for good. Here: an idle
connection is closed after the idle timeout, headers must arrive within the request timeout,
then the body within it again (a 408 in the API's error shape), and past the concurrency limit
a request is a 503 in that shape (uvicorn's own is the plain text ``Service Unavailable``), with
the CORS headers of ``--cors-origin``. A request whose headers are over :data:`MAX_HEADER_BYTES`
is a 431 in that shape, the connection closed: h11 limits headers only while they are
incomplete, so a megabyte of them arriving in one read was parsed and kept whole, and one
arriving in pieces was a plain-text 400. The limit is checked whenever h11 parses a request,
so a pipelined one (sent in the same TCP write as the request before it, and parsed from
what was buffered once that one is answered, not in ``data_received``) is held to it too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from tunesmith_support.api_access import with_cors
from tunesmith_support.api_errors import STATUS_CODES, ApiError, error_body

#: The most bytes of a request line and headers taken (h11's limit on incomplete ones, and
#: Node's): the API's requests need a few hundred.
MAX_HEADER_BYTES = 16 * 1024

#: Where a request's headers end, in the spellings h11 accepts.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


def head_size(buffered: bytes) -> int:
    """How many bytes of ``buffered`` (what a connection received since its last request) are
    the next request's line and headers: up to their blank line, or all of it before that."""
    ends = [at + len(end) for end in _HEAD_ENDS if (at := buffered.find(end)) >= 0]
    return min(ends) if ends else len(buffered)


def too_large_response() -> bytes:
    """The 431 ``headers_too_large`` sent, as raw bytes, before h11 has a request to answer."""
    detail = f"the request's headers are over {MAX_HEADER_BYTES:,} bytes"
    body = json.dumps(error_body(431, detail)).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(request_timeout: float, limit: int, cors_origins: Sequence[str] = ()) -> type:
    """uvicorn's h11 protocol class with the headers' deadline and size limit, an idle timer
    from the moment a connection opens, and the concurrency limit answered as an
    ``ErrorMessage`` (with the CORS headers of ``cors_origins``). Named for uvicorn's ``http=``
    (h11 even where httptools is installed: its behaviour is the one tested)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadCheckedConnection(h11.Connection):
        """h11's connection, the next request's line and headers measured each time one is
        parsed: uvicorn parses a pipelined request from the bytes that came with the request
        before it, once that one is answered (never through ``data_received``), so a check
        there alone let a megabyte of headers through behind a small request."""

        def __init__(self, too_large: Any, *args: Any) -> None:
            super().__init__(*args)
            self.too_large = too_large

        def next_event(self) -> Any:
            idle = self.their_state is h11.IDLE
            if idle and head_size(self.trailing_data[0]) > MAX_HEADER_BYTES:
                self.too_large()
                return h11.NEED_DATA  # uvicorn's loop stops; the connection is closing
            return super().next_event()

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = HeadCheckedConnection(self.headers_too_large, h11.SERVER, MAX_HEADER_BYTES)
            self.limit_concurrency = None  # uvicorn's check answers plain text: ours is below
            self.app = _Overloaded(self.app, self, limit, cors_origins)
            self.headers_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # uvicorn arms its keep-alive timer after an answer only; the first byte cancels it.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def headers_too_large(self) -> None:
            if not self.transport.is_closing():
                # h11 has no request to answer yet: the response goes out as bytes.
                self.transport.write(too_large_response())
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)  # its parse checks the headers' size (above)
            # Headers begun but not complete (h11 waits in IDLE until the request line and
            # every header are in): byte by byte, a client kept the connection forever.
            waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
            if waiting and self.headers_deadline is None:
                self.headers_deadline = self.loop.call_later(request_timeout, self.headers_late)
            elif not waiting:
                self.cancel_headers_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_headers_deadline()
            super().connection_lost(exc)

        def cancel_headers_deadline(self) -> None:
            if self.headers_deadline is not None:
                self.headers_deadline.cancel()
                self.headers_deadline = None

        def headers_late(self) -> None:
            self.headers_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                # No request to answer yet (h11 cannot send a response before one): close.
                self.transport.close()

    return GuardedH11Protocol


class _Overloaded:
    """The app a protocol runs each request with: a 503 ``service_unavailable`` (``Retry-After:
    1``, the connection closed) when more than ``limit`` connections are open or requests in
    flight, this one's included; otherwise the app."""

    def __init__(
        self, app: Any, protocol: Any, limit: int, cors_origins: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.protocol = protocol
        self.limit = limit
        # A widget on another origin reads the 503 (and its Retry-After) only with them.
        self.busy = with_cors(self._busy, cors_origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        connections, tasks = len(self.protocol.connections), len(self.protocol.tasks)
        if scope["type"] != "http" or max(connections, tasks) <= self.limit:
            await self.app(scope, receive, send)
            return
        await self.busy(scope, receive, send)

    async def _busy(self, scope: Any, receive: Any, send: Any) -> None:
        detail = (
            f"the server is busy ({self.limit} connections or requests at once); "
            "try again in a moment"
        )
        body = json.dumps(error_body(503, detail)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyDeadline:
    """ASGI middleware: a request body not complete ``seconds`` after its headers is a 408
    ``request_timeout`` (the connection then closed: the rest of the body is never read). Raised
    while the route reads the body, so the app's error handlers and CORS headers apply."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed() -> Any:
            nonlocal complete
            if complete:  # waiting for a disconnect after the body: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                detail = f"the request body did not arrive within {self.seconds:g} seconds"
                code = STATUS_CODES[408]
                raise ApiError(408, code, detail, headers={"Connection": "close"}) from None
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, timed, send)
