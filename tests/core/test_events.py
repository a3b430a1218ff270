"""Events: ids, sinks, the outbox with retries, `tunesmith events`, the webhook deadline."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events import (
    OUTBOX_MIGRATIONS,
    RetryPolicy,
    WebhookSink,
    emit,
    list_deliveries,
    make_sink,
    record,
    retry,
)
from tunesmith.hooktypes import Event
from tunesmith.store import Store


def test_stdout_sink_prints_one_json_line_with_a_timestamp(capsys):
    emit(
        Event(kind="alert", message="negative surge", payload={"topic": "TSLA"}),
        [make_sink("stdout")],
    )
    line = json.loads(capsys.readouterr().out)
    assert line["kind"] == "alert" and line["payload"] == {"topic": "TSLA"}
    assert line["created_at"]


def test_jsonl_sink_appends_whole_lines(tmp_path):
    sink = make_sink(f"jsonl:{tmp_path / 'events.jsonl'}")
    for i in range(3):
        sink.send(Event(kind="handoff", message=f"m{i}"))
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["m0", "m1", "m2"]


def test_jsonl_sink_leaves_no_fragment_when_the_disk_fills_mid_line(tmp_path, monkeypatch):
    """A write cut short by ENOSPC left half a line, and the retry glued the event onto it:
    a reader lost the event and the one before it."""
    import errno
    import pathlib

    target = tmp_path / "events.jsonl"
    sink = make_sink(f"jsonl:{target}")
    sink.send(Event(kind="handoff", message="before"))
    real_open = pathlib.Path.open

    class HalfThenFull:
        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_full(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return HalfThenFull(handle) if self == target and "a" in mode else handle

    monkeypatch.setattr(pathlib.Path, "open", open_full)
    with pytest.raises(OSError, match="No space left"):
        sink.send(Event(kind="handoff", message="lost"))
    monkeypatch.setattr(pathlib.Path, "open", real_open)
    sink.send(Event(kind="handoff", message="retried"))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["before", "retried"]


def test_jsonl_sink_ends_a_line_a_killed_writer_left_unfinished(tmp_path):
    target = tmp_path / "events.jsonl"
    target.write_text('{"id": "a", "kind": "handoff", "mess', encoding="utf-8")
    make_sink(f"jsonl:{target}").send(Event(kind="handoff", message="next"))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["message"] == "next"


def test_webhook_sink_posts_the_event_as_json():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        make_sink(f"webhook:http://127.0.0.1:{server.server_port}/hook").send(
            Event(kind="alert", message="hi")
        )
        thread.join(timeout=10)
    finally:
        server.server_close()
    assert received and received[0]["message"] == "hi"


def test_unknown_sink_scheme_lists_the_known_ones():
    with pytest.raises(UserInputError, match="known: .*jsonl.*stdout"):
        make_sink("carrier-pigeon:home")


def test_a_failing_sink_does_not_stop_the_others(tmp_path, capsys):
    class Broken:
        def send(self, event):
            raise ConnectionError("down")

    good = make_sink(f"jsonl:{tmp_path / 'e.jsonl'}")
    emit(Event(kind="alert", message="x"), [Broken(), good])
    assert (tmp_path / "e.jsonl").read_text(encoding="utf-8").count("\n") == 1
    assert "down" in capsys.readouterr().err


# --- ids, the outbox, retries -------------------------------------------------------------


def fast(tries: int = 3) -> RetryPolicy:
    return RetryPolicy(tries=tries, base_delay=0.01)


class Flaky:
    """Fails ``failures`` times, then delivers; records what the outbox said during each send."""

    sink_url = "memory:flaky"

    def __init__(self, failures: int, outbox=None) -> None:
        self.failures = failures
        self.outbox = outbox
        self.calls = 0
        self.seen_status: list[str] = []
        self.got: list[Event] = []

    def send(self, event: Event) -> None:
        self.calls += 1
        if self.outbox is not None:
            rows = list_deliveries(self.outbox, event_ids=[event.id])
            self.seen_status.append(rows[0].status if rows else "absent")
        if self.calls <= self.failures:
            raise ConnectionError(f"down {self.calls}")
        self.got.append(event)


def test_an_event_gets_a_uuid_hex_id_and_a_utc_time_at_creation():
    first, second = Event(kind="k", message="m"), Event(kind="k", message="m")
    assert re.fullmatch(r"[0-9a-f]{32}", first.id) and first.id != second.id
    created = datetime.fromisoformat(first.created_at)
    assert created.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60


def test_emit_records_the_event_in_the_outbox_before_delivering(tmp_path):
    outbox = tmp_path / "out.sqlite"
    sink = Flaky(0, outbox=outbox)
    report = emit(Event(kind="alert", message="x", payload={"n": 1}), [sink], outbox=outbox)
    assert sink.seen_status == ["pending"]
    assert report.delivered == ["memory:flaky"] and report.ok
    (row,) = list_deliveries(outbox)
    assert (row.status, row.attempts, row.event.payload) == ("delivered", 1, {"n": 1})
    assert row.delivered_at and row.last_error is None


def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds(tmp_path):
    sink = Flaky(2)
    started = time.monotonic()
    report = emit(
        Event(kind="a", message="x"),
        [sink],
        outbox=tmp_path / "o.sqlite",
        retry=RetryPolicy(tries=3, base_delay=0.1),
    )
    elapsed = time.monotonic() - started
    assert report.ok and sink.calls == 3 and len(sink.got) == 1
    assert elapsed >= 0.1 + 0.2  # waited 0.1 s, then 0.2 s
    (row,) = list_deliveries(tmp_path / "o.sqlite")
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, "ConnectionError: down 2")


def test_the_default_retry_policy_is_bounded_and_short():
    policy = RetryPolicy()
    total_wait = sum(policy.delay(attempt) for attempt in range(1, policy.tries + 1))
    assert policy.tries == 3 and total_wait <= 1.0


def test_a_sink_that_hangs_is_given_up_on_and_the_others_still_get_the_event(tmp_path, capsys):
    release = threading.Event()

    class Hangs:
        sink_url = "memory:hangs"

        def send(self, event):
            release.wait(30)  # a plugin's sink stuck on a dead connection

    good = Flaky(0)
    policy = RetryPolicy(tries=1, base_delay=0.01, send_timeout=0.2)
    started = time.monotonic()
    try:
        report = emit(Event(kind="a", message="x"), [Hangs(), good], outbox=tmp_path / "o.sqlite",
                      retry=policy)  # fmt: skip
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert report.failed == ["memory:hangs"] and report.delivered == ["memory:flaky"]
    (failed,) = list_deliveries(tmp_path / "o.sqlite", status="failed")
    assert failed.last_error == "TimeoutError: the sink did not return within 0.2 s"


def test_a_delivery_that_keeps_failing_stays_visible_as_failed(tmp_path, capsys):
    outbox = tmp_path / "o.sqlite"
    good = make_sink(f"jsonl:{tmp_path / 'ok.jsonl'}")
    report = emit(Event(kind="a", message="x"), [Flaky(99), good], outbox=outbox, retry=fast())
    assert report.failed == ["memory:flaky"] and report.delivered == [good.sink_url]
    assert "down 3" in report.errors["memory:flaky"]
    (failed,) = list_deliveries(outbox, status="failed")
    assert (failed.sink, failed.attempts, failed.last_error) == (
        "memory:flaky",
        3,
        "ConnectionError: down 3",
    )
    err = capsys.readouterr().err
    assert "memory:flaky" in err and "events retry" in err


def test_emit_with_a_bad_sink_url_records_nothing(tmp_path):
    with pytest.raises(UserInputError, match="unknown event sink"):
        emit(Event(kind="a", message="x"), ["nope:x"], outbox=tmp_path / "o.sqlite")
    assert list_deliveries(tmp_path / "o.sqlite") == []


def test_the_default_outbox_is_events_sqlite_in_tunesmith_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    emit(Event(kind="a", message="x"), [make_sink(f"jsonl:{tmp_path / 'e.jsonl'}")])
    assert (tmp_path / "home" / "events.sqlite").exists()
    assert [d.event.message for d in list_deliveries()] == ["x"]


def test_a_plugin_can_keep_the_outbox_in_its_own_store(tmp_path):
    db = Store.open(
        tmp_path / "plugin.sqlite", namespace="finance", migrations=["CREATE TABLE t (x)"]
    )
    emit(Event(kind="finance.alert", message="x"), [Flaky(0)], outbox=db)
    assert db.schema_version("finance") == 1
    assert db.schema_version("events") == len(OUTBOX_MIGRATIONS)
    assert db.query("SELECT status FROM outbox_deliveries")[0][0] == "delivered"
    db.close()


def test_an_outbox_first_made_in_a_rolled_back_transaction_is_made_again_on_the_next_emit(
    tmp_path,
):
    db = Store.open(
        tmp_path / "plugin.sqlite", namespace="hello", migrations=["CREATE TABLE t (x)"]
    )
    with pytest.raises(RuntimeError, match="turn failed"), db.transaction() as tx:
        record(Event(kind="hello.greeted", message="x"), [Flaky(0)], outbox=db)
        tx.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("the turn failed")  # the outbox tables roll back with it
    assert db.schema_version("events") == 0
    report = emit(Event(kind="hello.greeted", message="y"), [Flaky(0)], outbox=db)
    assert report.ok and db.schema_version("events") == len(OUTBOX_MIGRATIONS)
    assert [d.event.message for d in list_deliveries(db)] == ["y"]
    db.close()


def test_retry_resends_failed_deliveries_from_their_recorded_urls(tmp_path):
    outbox = tmp_path / "o.sqlite"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the sink wants a folder", encoding="utf-8")
    url = f"jsonl:{blocked / 'events.jsonl'}"
    event = Event(kind="support.handoff", message="call me")
    assert emit(event, [url], outbox=outbox, retry=fast()).failed == [url]
    blocked.unlink()
    (report,) = retry(outbox, policy=fast())
    assert report.delivered == [url] and report.event_id == event.id
    line = json.loads((blocked / "events.jsonl").read_text(encoding="utf-8"))
    assert (line["id"], line["message"]) == (event.id, "call me")
    assert [d.status for d in list_deliveries(outbox)] == ["delivered"]
    assert retry(outbox, policy=fast()) == []


class Recorder:
    """A sink that keeps what it was sent; ``during_send`` runs inside its first send."""

    sink_url = "memory:recorder"

    def __init__(self, during_send=None) -> None:
        self.got: list[str] = []
        self.during_send = during_send

    def send(self, event: Event) -> None:
        if self.during_send is not None:
            action, self.during_send = self.during_send, None
            action()
        self.got.append(event.id)


def test_two_retries_at_once_send_each_failed_delivery_once(tmp_path):
    """Two `events retry` at once (cron and a user) each listed the failed deliveries and sent
    every one of them: each event reached its sink twice. A retry now claims a row first."""
    outbox = tmp_path / "o.sqlite"
    ids = [
        emit(Event(kind="a", message=f"m{i}"), [Flaky(99)], outbox=outbox, retry=fast(1)).event_id
        for i in range(3)
    ]
    other = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    second = Recorder()
    # The second retry (its own connection, as another process has) runs while the first
    # one is sending its first delivery.
    first = Recorder(lambda: retry(other, sinks={"memory:flaky": second}, policy=fast(1)))
    reports = retry(outbox, sinks={"memory:flaky": first}, policy=fast(1))
    other.close()
    assert sorted(first.got + second.got) == sorted(ids)  # each once
    # The first retry sent what it had claimed; the second took the two not claimed yet.
    assert [r.delivered for r in reports] == [["memory:flaky"]] and len(second.got) == 2
    assert {d.status for d in list_deliveries(outbox)} == {"delivered"}


def test_a_retry_stopped_mid_send_leaves_its_claimed_deliveries_failed_not_pending(tmp_path):
    """Stopped by Ctrl-C or SIGTERM while sending, a retry left the rows it had claimed
    `pending` under a dead owner, and the nightly `events retry` (failed ones) never sent them
    again. They are failed again now, and the next plain retry sends them."""
    outbox = tmp_path / "o.sqlite"
    for i in range(2):
        emit(Event(kind="a", message=f"m{i}"), [Flaky(99)], outbox=outbox, retry=fast(1))

    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retry(outbox, sinks={"memory:flaky": Recorder(stop)}, policy=fast(1))
    assert {d.status for d in list_deliveries(outbox)} == {"failed"}
    later = Recorder()
    reports = retry(outbox, sinks={"memory:flaky": later}, policy=fast(1))
    assert len(later.got) == 2 and all(r.delivered for r in reports)


def test_a_retry_of_pending_deliveries_leaves_those_a_live_process_is_sending(tmp_path):
    """`events retry --status pending` is for what a killed process left; it also re-sent the
    deliveries a running emitter (a `support serve`) was still sending, so they arrived twice.
    Rows of a process that is alive are left to it; once it is gone, they are sent."""
    import subprocess
    import sys

    from tunesmith.events import _start_time

    outbox = tmp_path / "o.sqlite"
    report = emit(Event(kind="a", message="x"), [Flaky(99)], outbox=outbox, retry=fast(1))
    db = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = f"{socket.gethostname()}:{child.pid}:{_start_time(child.pid)}"
        db.execute("UPDATE outbox_deliveries SET status = 'pending', owner = ?", (owner,))
        sink = Recorder()
        assert retry(db, status="pending", sinks={"memory:flaky": sink}, policy=fast(1)) == []
        assert sink.got == [] and list_deliveries(db)[0].status == "pending"
    finally:
        child.kill()
        child.wait()
    (again,) = retry(db, status="pending", sinks={"memory:flaky": sink}, policy=fast(1))
    assert again.delivered == ["memory:flaky"] and sink.got == [report.event_id]
    db.close()


def test_a_relative_jsonl_sink_is_recorded_absolute_so_retry_elsewhere_writes_the_same_file(
    tmp_path, monkeypatch
):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "out").write_text("a file where the sink wants a folder", encoding="utf-8")
    monkeypatch.chdir(work)
    outbox = tmp_path / "o.sqlite"
    report = emit(Event(kind="a", message="x"), ["jsonl:out/e.jsonl"], outbox=outbox, retry=fast())
    absolute = f"jsonl:{work.resolve() / 'out' / 'e.jsonl'}"
    assert report.failed == [absolute]
    (work / "out").unlink()
    monkeypatch.chdir(elsewhere)
    (again,) = retry(outbox, policy=fast())
    assert again.delivered == [absolute]
    assert (work / "out" / "e.jsonl").exists() and not (elsewhere / "out").exists()


def test_retry_of_a_sink_without_a_url_reports_why(tmp_path):
    class Anonymous:
        def send(self, event):
            raise OSError("gone")

    outbox = tmp_path / "o.sqlite"
    emit(Event(kind="a", message="x"), [Anonymous()], outbox=outbox, retry=fast(1))
    (report,) = retry(outbox, policy=fast(1))
    (name,) = report.failed
    assert name.endswith("Anonymous") and "cannot rebuild the sink" in report.errors[name]
    sink = Flaky(0)
    (report,) = retry(outbox, sinks={name: sink}, policy=fast(1))
    assert report.delivered == [name] and sink.got


def test_events_cli_lists_tails_and_retries_failed_deliveries(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    blocked = tmp_path / "blocked"
    blocked.write_text("x", encoding="utf-8")
    url = f"jsonl:{blocked / 'e.jsonl'}"
    for i in range(3):
        emit(Event(kind="alert", message=f"m{i}"), [url], outbox=outbox, retry=fast(1))
    emit(Event(kind="alert", message="ok"), ["stdout"], outbox=outbox)

    listed = cli("events", "list", "--outbox", str(outbox), "--status", "failed", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["message"] for r in rows] == ["m0", "m1", "m2"]
    assert {(r["sink"], r["status"], r["attempts"]) for r in rows} == {(url, "failed", 1)}
    assert "FileExistsError" in rows[0]["last_error"]

    tail = cli("events", "tail", "-n", "2", "--outbox", str(outbox))
    assert tail.exit_code == 0, tail.output
    table = tail.stdout.splitlines()
    assert table[0].split() == [
        "created_at",
        "event",
        "kind",
        "sink",
        "status",
        "attempts",
        "last_error",
    ]
    assert [line.split()[4] for line in table[1:]] == ["failed", "delivered"]

    still = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")
    assert still.exit_code == 1 and "3 deliveries still failing" in still.output

    blocked.unlink()
    fixed = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")
    assert fixed.exit_code == 0, fixed.output
    assert "re-sent 3 deliveries; 0 still failing" in fixed.stdout
    lines = (blocked / "e.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["m0", "m1", "m2"]


def test_events_cli_retry_of_an_id_before_any_outbox_exists_is_an_error(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    result = cli("events", "retry", "--id", "abc123")
    assert result.exit_code == 2
    assert "no event with id 'abc123'" in result.output
    assert "re-sent" not in result.output
    # With no id, an absent outbox still means nothing to retry.
    assert cli("events", "retry").exit_code == 0


def test_events_cli_on_a_corrupt_outbox_is_one_error_line(tmp_path, cli):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite at all\n" * 100)
    result = cli("events", "list", "--outbox", str(bad))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {bad}: not a usable SQLite database (file is not a database)"
    ]


def test_events_cli_listing_a_database_without_an_outbox_writes_nothing_into_it(tmp_path, cli):
    # It created the outbox tables (and WAL mode) in whatever database --outbox named
    import sqlite3

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes(x)")
    db.close()
    before = other.read_bytes()
    for command in ("list", "tail"):
        result = cli("events", command, "--outbox", str(other))
        assert result.exit_code == 0, result.output
        assert "no events" in result.output
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_listing_or_retrying_an_outbox_path_that_does_not_exist_creates_no_file(
    tmp_path, monkeypatch
):
    missing = tmp_path / "sub" / "none.sqlite"
    (tmp_path / "sub").mkdir()
    assert list_deliveries(missing) == []
    assert list_deliveries(str(missing), status="failed", newest=3) == []
    assert retry(missing) == []
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "sub"))
    assert list_deliveries() == []  # the default outbox, not made yet
    assert list((tmp_path / "sub").iterdir()) == []


def test_threads_emitting_at_once_lose_no_event(tmp_path):
    outbox = tmp_path / "o.sqlite"
    url = f"jsonl:{tmp_path / 'e.jsonl'}"

    def work(n):
        for i in range(10):
            emit(Event(kind="a", message=f"{n}-{i}"), [url], outbox=outbox)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list_deliveries(outbox, status="delivered")) == 40
    assert len((tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()) == 40


# --- the webhook's deadline ---------------------------------------------------------------


def serve(handler_class):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_webhook_answering_an_error_status_is_a_failed_delivery(tmp_path):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = serve(Handler)
    try:
        url = f"webhook:http://127.0.0.1:{server.server_port}/hook"
        report = emit(Event(kind="a", message="x"), [url], outbox=tmp_path / "o", retry=fast(2))
    finally:
        server.shutdown()
        server.server_close()
    assert report.failed == [url] and "answered 503" in report.errors[url]


@pytest.mark.parametrize("phase", ["status line", "body"])
def test_a_trickling_webhook_is_cut_off_at_the_total_deadline(phase):
    stop = threading.Event()

    calls: list[int] = []

    class Trickle(BaseHTTPRequestHandler):
        # The first call is answered at once on a connection kept alive; the second trickles one
        # byte every 0.3 s: each read returns well inside the 1 s read timeout, so only a deadline
        # for the whole call stops it (the whole answer would take about 30 s), also when the
        # client would reuse the first call's connection.
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(1)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n"
            if len(calls) == 1:
                self.wfile.write(head + b"x" * 80)
                self.wfile.flush()
                return
            if phase == "body":
                self.wfile.write(head)
                self.wfile.flush()
                head = b""
            try:
                for byte in head + b"x" * 80:
                    if stop.wait(0.3):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = serve(Trickle)
    sink = WebhookSink(
        f"http://127.0.0.1:{server.server_port}/hook",
        connect_timeout=1.0,
        read_timeout=1.0,
        deadline=1.5,
    )
    try:
        sink.send(Event(kind="a", message="answered at once"))
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="did not answer within the 1.5 s deadline"):
            sink.send(Event(kind="a", message="x"))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert 1.4 <= elapsed < 2.5


def test_nan_and_infinite_payload_values_are_delivered_and_stored_as_null(tmp_path):
    import numpy as np

    def strict(line):  # what JSON.parse and most webhook receivers accept
        return json.loads(line, parse_constant=lambda word: pytest.fail(f"{word} in {line}"))

    path = tmp_path / "events.jsonl"
    event = Event(kind="alert", message="x", payload={
        "lift": float("nan"), "rates": np.array([np.inf, 0.5]), "low": -float("inf"),
        "note": "NaN is a word here"})  # fmt: skip
    emit(event, [f"jsonl:{path}"], outbox=tmp_path / "o.sqlite")
    sent = strict(path.read_text().strip())["payload"]
    assert sent == {"lift": None, "rates": [None, 0.5], "low": None, "note": "NaN is a word here"}
    (stored,) = list_deliveries(tmp_path / "o.sqlite")
    assert stored.event.payload == sent


def test_a_jsonl_sink_writes_only_jsonl_files_so_a_shared_outbox_cannot_append_to_any_file(
    tmp_path,
):
    # `events retry` re-sends to the sinks an outbox records: a database someone else sent,
    # with a failed delivery to jsonl:~/.bashrc, appended a line they wrote to that file
    from tunesmith.events import make_sink

    for name in (".bashrc", "crontab", "notes.txt"):
        with pytest.raises(UserInputError, match=r"writes a \.jsonl or \.ndjson file"):
            make_sink(f"jsonl:{tmp_path / name}")
        assert not (tmp_path / name).exists()
    assert make_sink(f"jsonl:{tmp_path / 'e.JSONL'}") is not None


def test_a_jsonl_write_holds_the_files_lock_against_writers_with_their_own_sink(tmp_path):
    """Threads and processes each build their own sink for one file: checking the last byte
    and writing must exclude theirs, or a size seen before another writer's bytes were
    readable ends a line twice (a blank line in the make test run of 2026-12-07)."""
    import fcntl

    from tunesmith.events import JsonlSink

    path = tmp_path / "e.jsonl"
    path.write_text('{"kind": "earlier"}\n', encoding="utf-8")
    sink = JsonlSink(str(path))
    seen = []
    real = sink._ends_a_line

    def other_writer_tries(end):
        with path.open("ab") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("excluded")
            else:
                seen.append("got in")
        return real(end)

    sink._ends_a_line = other_writer_tries
    sink.send(Event(kind="a", message="m"))
    assert seen == ["excluded"]
    with path.open("ab") as after:  # released once the line is written
        fcntl.flock(after.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


# --- retrying an outbox from elsewhere ----------------------------------------------------


class CountingHook(BaseHTTPRequestHandler):
    """A webhook receiver that keeps each event posted to it (``server.got``)."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def foreign_failed_webhook(tmp_path, monkeypatch, server) -> tuple[str, str]:
    """An outbox another setup (its own TUNESMITH_HOME) filled, with a failed webhook delivery;
    then this test's own home. Returns the outbox and the recorded sink name."""
    outbox = tmp_path / "sent_to_me.sqlite"
    url = f"webhook:http://127.0.0.1:{server.server_port}/hook"
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "their_home"))
    emit(Event(kind="support.handoff", message="theirs"), [url], outbox=outbox, retry=fast(1))
    db = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    db.execute("UPDATE outbox_deliveries SET status = 'failed'")
    db.close()
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "my_home"))
    return str(outbox), url


def test_retry_of_a_foreign_outbox_posts_to_no_webhook_without_consent(tmp_path, monkeypatch):
    """An outbox someone sent (a KB's conversations.sqlite) chose the URL a retry POSTed the
    events to. A delivery this setup did not record is now left unsent, with the reason, until
    the user allows the sink by name."""
    server = serve(CountingHook)
    server.got = []
    try:
        outbox, url = foreign_failed_webhook(tmp_path, monkeypatch, server)
        assert len(server.got) == 1  # their own emit reached it
        (report,) = retry(outbox, policy=fast(1))
        assert report.failed == [url] and "--allow-sink" in report.errors[url]
        assert len(server.got) == 1  # nothing posted
        assert [d.status for d in list_deliveries(outbox)] == ["failed"]  # left as it was
        (allowed,) = retry(outbox, policy=fast(1), allow_sinks=[url])
        assert allowed.delivered == [url] and len(server.got) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_retry_refuses_a_delivery_whose_event_was_edited_after_this_setup_recorded_it(
    tmp_path,
):
    """The mark covers the stored event too: an outbox of ours, sent away and changed, cannot
    post a message of someone else's to our own webhook."""
    outbox = tmp_path / "o.sqlite"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the sink wants a folder", encoding="utf-8")
    url = f"jsonl:{blocked / 'e.jsonl'}"
    emit(Event(kind="alert", message="ours"), [url], outbox=outbox, retry=fast(1))
    blocked.unlink()
    db = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    db.execute("UPDATE outbox_events SET message = 'forged'")
    db.close()
    (report,) = retry(outbox, policy=fast(1))
    assert report.failed == [url] and "did not record" in report.errors[url]
    assert not (blocked / "e.jsonl").exists()


def test_events_cli_retry_of_a_foreign_outbox_needs_allow_sink(tmp_path, monkeypatch, cli):
    server = serve(CountingHook)
    server.got = []
    try:
        outbox, url = foreign_failed_webhook(tmp_path, monkeypatch, server)
        refused = cli("events", "retry", "--outbox", outbox, "--tries", "1")
        assert refused.exit_code == 1 and len(server.got) == 1
        assert f"--allow-sink '{url}'" in refused.output
        allowed = cli("events", "retry", "--outbox", outbox, "--tries", "1", "--allow-sink", url)
        assert allowed.exit_code == 0, allowed.output
        assert "re-sent 1 deliveries; 0 still failing" in allowed.stdout
        assert [e["message"] for e in server.got] == ["theirs", "theirs"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_outbox_key_is_private_and_kept_when_it_exists(tmp_path, monkeypatch):
    from tunesmith.events import outbox_key_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    emit(Event(kind="a", message="x"), [Flaky(0)], outbox=tmp_path / "o.sqlite")
    key = outbox_key_path()
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    first = key.read_bytes()
    emit(Event(kind="a", message="y"), [Flaky(0)], outbox=tmp_path / "o.sqlite")
    assert key.read_bytes() == first


def test_events_cli_table_hides_a_webhook_token_that_json_keeps_whole(tmp_path, cli):
    """A Slack-style webhook keeps its secret in the path: the table (read on shared screens and
    pasted into tickets) shows host and a fingerprint, `--json` keeps the whole name that
    `retry --allow-sink` needs."""
    outbox = tmp_path / "o.sqlite"
    url = "webhook:http://127.0.0.1:9/services/T000/B000/SECRETTOKEN"
    emit(Event(kind="alert", message="m"), [url], outbox=outbox, retry=fast(1))

    for command in ("list", "tail"):
        table = cli("events", command, "--outbox", str(outbox))
        assert table.exit_code == 0, table.output
        assert "SECRETTOKEN" not in table.output
        assert "webhook:http://127.0.0.1:9/<hidden " in table.stdout
    listed = cli("events", "list", "--outbox", str(outbox), "--json")
    assert [row["sink"] for row in json.loads(listed.stdout)] == [url]


def test_events_cli_retry_shows_a_still_failing_webhook_without_its_token(tmp_path, cli):
    """A delivery that fails again is listed on stderr as the table shows its sink: a
    Slack-style token in the URL's path stays off the screen."""
    outbox = tmp_path / "o.sqlite"
    url = "webhook:http://127.0.0.1:9/services/T000/B000/SECRETTOKEN"
    emit(Event(kind="alert", message="m"), [url], outbox=outbox, retry=fast(1))

    again = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")
    assert again.exit_code == 1 and "1 delivery still failing" in again.output
    assert "webhook:http://127.0.0.1:9/<hidden " in again.output
    assert "SECRETTOKEN" not in again.output
