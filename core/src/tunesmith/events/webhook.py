"""The ``webhook:`` sink: each event POSTed as JSON, within a total deadline."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import UserInputError
from tunesmith.events.serialize import event_to_json
from tunesmith.events.shown import shown_url
from tunesmith.hooktypes import Event


def _check_webhook_url(url: str) -> None:
    """A UserInputError unless ``url`` is an http(s) URL with a host that a request can use.

    Checked when the sink is built, so that a typo is refused before the event is recorded,
    not retried and kept as a failed delivery that no retry can ever deliver.
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UserInputError(f"the webhook sink needs an http(s) URL, got {url!r}")
    problem = None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        problem = "it holds spaces or control characters (percent-encode them)"
    elif lone_surrogate(url):
        problem = "it holds a lone surrogate, not a character"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
        except ValueError as exc:
            problem = str(exc)
        else:
            if not parts.hostname:
                problem = "it names no host"
    if problem:
        raise UserInputError(f"the webhook sink URL {url!r} is malformed: {problem}")


class WebhookSink:
    """POSTs each event as JSON to a URL; any failure (including a non-2xx status) raises.

    ``connect_timeout`` bounds the TCP connect, ``read_timeout`` each wait for the server, and
    ``deadline`` the whole call: a server that trickles a byte just inside the read timeout is cut
    off at the deadline (a timer shuts the socket down, which wakes the blocked read).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        deadline: float = 10.0,
    ) -> None:
        _check_webhook_url(url)
        self.url = url
        self.sink_url = f"webhook:{url}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _http(self) -> Any:
        """One client per sink (building one costs ~0.2 s: TLS context, certificates).

        Keep-alive is off: every call opens its own connection, which the deadline timer can
        cut (a reused pooled connection would not be reported to it).
        """
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(
                        connect=min(self.connect_timeout, self.deadline),
                        read=self.read_timeout,
                        write=self.read_timeout,
                        pool=self.connect_timeout,
                    ),
                    limits=httpx.Limits(max_keepalive_connections=0),
                )
            return self._client

    def send(self, event: Event) -> None:
        import httpx

        body = event_to_json(event).encode("utf-8")
        sockets: list[socket.socket] = []
        expired = threading.Event()

        def trace(name: str, info: dict[str, Any]) -> None:
            # httpcore reports each stream it opens; keep its socket so the timer can cut it.
            if name.endswith(("connect_tcp.complete", "start_tls.complete")):
                sock = info["return_value"].get_extra_info("socket")
                if sock is not None:
                    sockets.append(sock)

        def cut() -> None:
            expired.set()
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        client = self._http()
        timer = threading.Timer(self.deadline, cut)
        timer.daemon = True
        timer.start()
        try:
            with client.stream(
                "POST",
                self.url,
                content=body,
                headers={"Content-Type": "application/json"},
                extensions={"trace": trace},
            ) as response:
                cut_short = False
                for _chunk in response.iter_raw():
                    if expired.is_set():
                        cut_short = True
                        break
                if cut_short:
                    raise TimeoutError
                response.raise_for_status()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            # The URL as shown (no token): these errors go to stderr and the outbox.
            if expired.is_set():
                raise TimeoutError(
                    f"{shown_url(self.url)} did not answer within the {self.deadline:g} s deadline"
                ) from None
            if isinstance(exc, httpx.HTTPStatusError):
                raise RuntimeError(
                    f"{shown_url(self.url)} answered {exc.response.status_code}"
                ) from None
            raise
        finally:
            timer.cancel()
