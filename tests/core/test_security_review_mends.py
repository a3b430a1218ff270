"""The security review's mends in core: what a stranger's data or a log reader can and cannot do."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tunesmith.events import RetryPolicy, emit, list_deliveries, shown_sink, shown_url
from tunesmith.hooktypes import Event

TOKEN = "xoxb-SECRET-TOKEN-123"


class Failing(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_token_is_not_printed_in_logs_or_kept_in_the_last_error(tmp_path, capsys):
    """A Slack-style webhook URL carries its token in the path (or the query, or user info):
    a failed delivery printed it on stderr (a server's log) twice, and `events list` showed it
    again in the last error."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    url = f"webhook:http://bot:{TOKEN}@127.0.0.1:{port}/services/T0/B0/{TOKEN}?token={TOKEN}"
    try:
        report = emit(
            Event(kind="a", message="x"),
            [url],
            outbox=tmp_path / "o.sqlite",
            retry=RetryPolicy(1, 0, 0),
        )
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "not delivered" in err and f"127.0.0.1:{port}" in err and "answered 500" in err
    assert TOKEN not in err
    assert TOKEN not in report.errors[url]
    (delivery,) = list_deliveries(tmp_path / "o.sqlite")
    assert delivery.sink == url  # kept whole: `events retry` must still reach it
    assert TOKEN not in delivery.last_error and "answered 500" in delivery.last_error


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("https://hooks.example.com/", "https://hooks.example.com/"),
        ("https://hooks.example.com:8443/a/b", "https://hooks.example.com:8443/<hidden"),
        ("https://u:p@[::1]/x?t=1", "https://[::1]/<hidden"),
    ],
)
def test_shown_urls_keep_the_host_and_hide_what_may_be_a_token(url, shown):
    assert shown_url(url).startswith(shown)
    assert "p@" not in shown_url(url) and "t=1" not in shown_url(url)
    assert shown_sink(f"webhook:{url}") == f"webhook:{shown_url(url)}"


def test_two_webhooks_on_one_host_are_shown_apart():
    a, b = shown_url("https://h.test/services/A"), shown_url("https://h.test/services/B")
    assert a != b and "services" not in a


def test_sinks_without_a_url_are_shown_as_they_are():
    assert shown_sink("jsonl:/tmp/alerts.jsonl") == "jsonl:/tmp/alerts.jsonl"
    assert shown_sink("stdout") == "stdout"
