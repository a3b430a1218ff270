"""Events and sinks: stdout, JSON lines and webhooks deliver; one failing sink spares the rest."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events import emit, make_sink
from tunesmith.hooktypes import Event


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
