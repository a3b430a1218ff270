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

#: How much of an error answer's body its line shows.
_BODY_SHOWN = 200


def _check_webhook_url(url: str) -> None:
    """A UserInputError unless ``url`` is an http(s) URL with a host that a request can use.

    Checked when the sink is built, so that a typo is refused before the event is recorded,
    not retried and kept as a failed delivery that no retry can ever deliver.
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        # The URL as logs show it: stderr goes to cron mail, and the path holds the token.
        shown = shown_url(url) if isinstance(url, str) else repr(url)
        raise UserInputError(f"the webhook sink needs an http(s) URL, got '{shown}'")
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
        raise UserInputError(f"the webhook sink URL '{shown_url(url)}' is malformed: {problem}")


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

        start = bytearray()
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
                for chunk in response.iter_raw():
                    if expired.is_set():
                        cut_short = True
                        break
                    if len(start) < _BODY_SHOWN:  # for an error status's line
                        start += chunk[: _BODY_SHOWN - len(start)]
                if cut_short:
                    raise TimeoutError
                response.raise_for_status()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            # The URL as shown (no token): these errors go to stderr and the outbox.
            shown = shown_url(self.url)
            if expired.is_set():
                raise TimeoutError(
                    f"{shown} did not answer within the {self.deadline:g} s deadline"
                ) from None
            if isinstance(exc, httpx.TimeoutException):
                # A TimeoutError, which the delivery takes as a sink that hangs (held at once,
                # not tried again): httpx's own says only "timed out".
                raise TimeoutError(self._timeout_message(exc, shown)) from None
            if isinstance(exc, httpx.HTTPStatusError):
                raise RuntimeError(status_message(exc.response, bytes(start), self.url)) from None
            if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise ConnectionError(certificate_message(exc, shown)) from None
            raise
        finally:
            timer.cancel()

    def _timeout_message(self, exc: Exception, shown: str) -> str:
        """What a timeout of httpx's means, with the limit that ran out."""
        import httpx

        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return f"{shown} did not take the connection within {self.connect_timeout:g} s"
        if isinstance(exc, httpx.WriteTimeout):
            return f"{shown} did not take the request within {self.read_timeout:g} s"
        return f"{shown} took the request but did not answer within {self.read_timeout:g} s"


def status_message(response: Any, start: bytes, url: str) -> str:
    """A non-2xx answer in one line: the status, where a redirect points (redirects are not
    followed: a POST turned into a GET would lose the event) and ``start``, the body's first
    bytes (Slack says why in it: ``invalid_payload``, ``no_service``), with the path and query
    of ``url``, where the token is, hidden as in :func:`shown_url` should it echo them."""
    from urllib.parse import urlsplit

    shown = shown_url(url)
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    text = f"{shown} answered {response.status_code}{reason}"
    location = response.headers.get("location")
    if response.is_redirect and location:
        target = shown_url(str(response.url.join(location)))
        return f"{text}, a redirect to {target}: give the webhook sink the URL it points to"
    body = ""
    if start and not response.headers.get("content-encoding"):
        body = start.decode("utf-8", "replace")
        parts = urlsplit(url)
        for secret in (url, parts.path.strip("/"), parts.query, parts.username, parts.password):
            if secret:
                body = body.replace(secret, "<hidden>")
        body = " ".join(body.split())[:_BODY_SHOWN]
    return f"{text}: {body}" if body else text


def certificate_message(exc: Exception, shown: str) -> str:
    """A certificate that does not check out (self-signed, expired, another host's): what to do."""
    detail = str(exc).rpartition("certificate verify failed:")[2].split(" (_ssl")[0].strip()
    return (
        f"{shown}: its TLS certificate is not trusted ({detail or 'verify failed'}); for a "
        "server with your own CA, set SSL_CERT_FILE to a PEM file of the CAs to trust (it "
        "replaces the default ones)"
    )
