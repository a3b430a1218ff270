"""A webhook that takes the connection and never answers (an alert relay stuck behind its
load balancer): one timed-out delivery holds it, so an emit pays one timeout, not three
deliveries of three tries; and what a webhook's failures say, one clear line each."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events import (
    EnvSink,
    RetryPolicy,
    WebhookSink,
    emit,
    list_deliveries,
    list_holds,
    make_sink,
    retry,
)
from tunesmith.hooktypes import Event

#: Small timeouts: each timed-out attempt costs READ seconds.
READ = 0.3


@pytest.fixture
def hanging_port():
    """A port whose server listens and never reads: the kernel takes the connection and the
    request, and no answer ever comes (a read timeout, not a refused connection)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def hanging_sink(port: int) -> WebhookSink:
    return WebhookSink(
        f"http://127.0.0.1:{port}/hooks/T0KEN", connect_timeout=READ, read_timeout=READ, deadline=5
    )


def rule(**changes) -> RetryPolicy:
    return RetryPolicy(**{"tries": 3, "base_delay": 0.05, "send_timeout": 5, **changes})


def timed_emits(outbox, sink, count: int, policy: RetryPolicy) -> list[float]:
    costs = []
    for i in range(count):
        started = time.monotonic()
        emit(Event(kind="finance.alert", message=f"a{i}"), [sink], outbox=outbox, retry=policy)
        costs.append(time.monotonic() - started)
    return costs


def test_a_webhook_that_never_answers_costs_one_timeout_then_is_held(
    tmp_path, hanging_port, capsys
):
    """It cost three deliveries of three tries (~16 s each with the real 5 s read timeout)
    before the hold: 47 s for the first three alerts of a finance run."""
    outbox, sink = tmp_path / "o.sqlite", hanging_sink(hanging_port)
    costs = timed_emits(outbox, sink, 6, rule())
    assert costs[0] < 3 * READ  # one attempt: the timeout is not tried again
    assert max(costs[1:]) < READ  # held from the first timeout on
    rows = list_deliveries(outbox)
    assert [d.attempts for d in rows] == [1, 0, 0, 0, 0, 0]
    assert {d.status for d in rows} == {"failed"}  # every one kept for `events retry`
    assert "took the request but did not answer within 0.3 s" in rows[0].last_error
    assert "T0KEN" not in rows[0].last_error
    assert rows[1].last_error.endswith(": a delivery timed out")
    (hold,) = list_holds(outbox)
    assert (hold.failures, hold.holds, hold.why) == (1, 1, "a delivery timed out")
    assert "T0KEN" not in capsys.readouterr().err


def test_a_timeout_is_retried_like_any_failure_when_the_policy_says_so(tmp_path, hanging_port):
    outbox, sink = tmp_path / "o.sqlite", hanging_sink(hanging_port)
    timed_emits(outbox, sink, 4, rule(hold_on_timeout=False, tries=2))
    assert [d.attempts for d in list_deliveries(outbox)] == [2, 2, 2, 0]


def test_a_refused_connection_still_takes_three_deliveries_to_hold(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: each connect is refused at once
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", connect_timeout=READ, read_timeout=READ)
    timed_emits(tmp_path / "o.sqlite", sink, 4, rule(base_delay=0))
    assert [d.attempts for d in list_deliveries(tmp_path / "o.sqlite")] == [3, 3, 3, 0]


def test_a_sink_in_an_environment_variable_that_hangs_is_held_at_once(
    tmp_path, hanging_port, monkeypatch
):
    """env:NAME wraps its sink's errors to hide the URL; a timeout must stay a timeout."""
    monkeypatch.setenv("HOOK", f"webhook:http://127.0.0.1:{hanging_port}/T0KEN")
    sink = EnvSink(
        "HOOK",
        make_sink=lambda spec: hanging_sink_at(spec.partition(":")[2]),
        sink_factories=lambda: {"webhook": hanging_sink_at},
    )
    costs = timed_emits(tmp_path / "o.sqlite", sink, 3, rule())
    assert costs[0] < 3 * READ
    first = list_deliveries(tmp_path / "o.sqlite")[0]
    assert [d.attempts for d in list_deliveries(tmp_path / "o.sqlite")] == [1, 0, 0]
    assert first.sink == "env:HOOK" and first.last_error.startswith("TimeoutError: ")


def hanging_sink_at(url: str) -> WebhookSink:
    return WebhookSink(url, connect_timeout=READ, read_timeout=READ, deadline=5)


def test_a_trial_that_times_out_holds_the_sink_again_and_one_refused_does_too(
    tmp_path, hanging_port
):
    """A hold that began on a timeout has one failure counted, fewer than three: a failed trial
    must hold again all the same, not let each emit send a trial of its own."""
    outbox, sink = tmp_path / "o.sqlite", hanging_sink(hanging_port)
    policy = rule(hold_for=0.2)
    timed_emits(outbox, sink, 1, policy)
    time.sleep(0.25)

    class Refused:
        sink_url = sink.sink_url

        def send(self, event):
            raise ConnectionError("[Errno 111] Connection refused")

    timed_emits(outbox, Refused(), 3, policy)  # the trial, then held again
    assert [d.attempts for d in list_deliveries(outbox)] == [1, 1, 0, 0]
    (hold,) = list_holds(outbox)
    assert hold.holds == 2


def test_a_retry_gives_up_on_a_sink_after_one_timed_out_delivery(tmp_path, hanging_port):
    """A retry of 500 deliveries to a webhook that hangs spent three timeouts before leaving
    the rest for the next retry."""
    outbox, sink = tmp_path / "o.sqlite", hanging_sink(hanging_port)
    name = sink.sink_url
    timed_emits(outbox, sink, 5, rule(hold_after=None, tries=1))  # five failed, none held
    assert list_holds(outbox) == []
    started = time.monotonic()
    reports = retry(outbox, sinks={name: sink}, policy=rule())
    assert time.monotonic() - started < 3 * READ
    assert [r.skipped for r in reports] == [[]] + [[name]] * 4
    assert "a delivery to this sink timed out in this retry" in reports[1].errors[name]
    assert [d.attempts for d in list_deliveries(outbox)] == [2, 1, 1, 1, 1]


def test_events_list_says_a_sink_held_after_a_timeout(tmp_path, hanging_port, cli):
    outbox = tmp_path / "o.sqlite"
    timed_emits(outbox, hanging_sink(hanging_port), 1, rule())
    result = cli("events", "list", "--outbox", str(outbox))
    assert result.exit_code == 0
    assert "(a delivery timed out) until" in result.stderr


# --- what a webhook's failures say ---------------------------------------------------------


class Answers(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        if "moved" in self.path:
            self.send_response(301)
            self.send_header("Location", "https://hooks.example.com/new/T0KEN")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"no_service for {self.path}".encode()  # a relay that echoes the path
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def answering():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_error_status_says_its_reason_and_the_start_of_the_body_without_the_token(answering):
    with pytest.raises(RuntimeError) as caught:
        WebhookSink(f"{answering}/services/T0KEN").send(Event(kind="a", message="x"))
    said = str(caught.value)
    assert "answered 404 Not Found: no_service for /<hidden>" in said
    assert "T0KEN" not in said and "\n" not in said


def test_a_redirect_says_where_it_points_and_that_it_is_not_followed(answering):
    with pytest.raises(RuntimeError) as caught:
        WebhookSink(f"{answering}/moved/T0KEN").send(Event(kind="a", message="x"))
    said = str(caught.value)
    assert "answered 301 Moved Permanently, a redirect to https://hooks.example.com/<hidden" in said
    assert "give the webhook sink the URL it points to" in said and "T0KEN" not in said


def test_a_self_signed_certificate_is_one_line_saying_how_to_trust_it(tmp_path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        capture_output=True,
    )  # fmt: skip
    if made.returncode:
        pytest.skip("openssl cannot make a certificate here")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ConnectionError) as caught:
            WebhookSink(f"https://127.0.0.1:{server.server_port}/T0KEN").send(
                Event(kind="a", message="x")
            )
    finally:
        server.shutdown()
        server.server_close()
    said = str(caught.value)
    assert "its TLS certificate is not trusted (self-signed certificate)" in said
    assert "SSL_CERT_FILE" in said and "T0KEN" not in said


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("webhok:https://hooks.example.com/T0KEN", "did you mean webhook:?"),
        ("https://hooks.example.com/T0KEN", "for a webhook write webhook:https://"),
        ("webhook:htps://hooks.example.com/T0KEN", "needs an http(s) URL, got 'htps://hooks"),
        ("webhook:https://hooks.example.com:99999/T0KEN", "Port out of range"),
        ("jsnol:alerts.jsonl", "did you mean jsonl:?"),
        ("stdot", "did you mean stdout?"),
    ],
)
def test_a_mistyped_sink_is_one_line_that_hides_the_token(typed, said):
    """Said on stderr, which cron mails and service managers log."""
    with pytest.raises(UserInputError) as caught:
        make_sink(typed)
    assert said in str(caught.value) and "T0KEN" not in str(caught.value)
