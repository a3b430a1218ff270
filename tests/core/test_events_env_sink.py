"""The ``env:NAME`` sink: a webhook's URL and token read from an environment variable, so it is
on no command line (``ps``) and not in the outbox, which records ``env:NAME``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tunesmith import hookimpl
from tunesmith.errors import UserInputError
from tunesmith.events import (
    OUTBOX_MIGRATIONS,
    RetryPolicy,
    emit,
    list_deliveries,
    make_sink,
    refuse_stdout_sink_with_json,
    retry,
)
from tunesmith.hooktypes import Event
from tunesmith.store import Store

SECRET = "T0K3N-s3cr3t"


class Receiver(BaseHTTPRequestHandler):
    """A local webhook receiver keeping each path and event posted to it (``server.got``)."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    server.got = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def hook_of(server) -> str:
    return f"webhook:http://127.0.0.1:{server.server_port}/services/{SECRET}"


#: A port nothing listens on: a delivery there fails at once (connection refused).
DOWN = f"webhook:http://127.0.0.1:9/services/{SECRET}"


def fast() -> RetryPolicy:
    return RetryPolicy(tries=1, base_delay=0, hold_after=None)


def outbox_bytes(outbox: Path) -> bytes:
    """The outbox as stored: the database with its WAL and journal files."""
    return b"".join(p.read_bytes() for p in outbox.parent.glob(outbox.name + "*"))


def test_an_emit_to_an_env_sink_reaches_the_url_the_variable_holds(tmp_path, monkeypatch, receiver):
    monkeypatch.setenv("HELPDESK_HOOK", hook_of(receiver))
    outbox = tmp_path / "o.sqlite"
    report = emit(Event(kind="support.handoff", message="hi"), ["env:HELPDESK_HOOK"], outbox=outbox)
    assert report.delivered == ["env:HELPDESK_HOOK"]
    assert [(path, e["message"]) for path, e in receiver.got] == [(f"/services/{SECRET}", "hi")]
    assert [d.sink for d in list_deliveries(outbox)] == ["env:HELPDESK_HOOK"]
    assert SECRET.encode() not in outbox_bytes(outbox)


def test_a_failed_env_delivery_keeps_the_secret_out_of_the_outbox_and_stderr(
    tmp_path, monkeypatch, capsys, cli
):
    monkeypatch.setenv("HELPDESK_HOOK", DOWN)
    outbox = tmp_path / "o.sqlite"
    report = emit(Event(kind="a", message="x"), ["env:HELPDESK_HOOK"], outbox=outbox, retry=fast())
    assert report.failed == ["env:HELPDESK_HOOK"]
    assert SECRET not in capsys.readouterr().err
    assert SECRET.encode() not in outbox_bytes(outbox)
    for command in (["list"], ["tail"], ["list", "--json"]):
        shown = cli("events", *command, "--outbox", str(outbox))
        assert shown.exit_code == 0 and "env:HELPDESK_HOOK" in shown.stdout
        assert SECRET not in shown.output


def test_a_send_error_quoting_the_url_is_recorded_without_it(
    tmp_path, monkeypatch, register_plugin
):
    """A plugin's sink whose error quotes its URL: the delivery's own scrubbing goes by the
    recorded name (env:NAME), which the URL does not contain."""

    class Quoting:
        def __init__(self, rest):
            self.rest = rest

        def send(self, event):
            raise ConnectionError(f"cannot reach memo:{self.rest}")

    class Plugin:
        @hookimpl
        def tunesmith_event_sinks(self):
            return {"memo": Quoting}

    register_plugin(Plugin(), "quoting-sink")
    monkeypatch.setenv("MEMO_HOOK", f"memo:https://memo.example.com/{SECRET}")
    outbox = tmp_path / "o.sqlite"
    report = emit(Event(kind="a", message="x"), ["env:MEMO_HOOK"], outbox=outbox, retry=fast())
    error = report.errors["env:MEMO_HOOK"]
    assert "ConnectionError" in error and "memo.example.com" in error and SECRET not in error
    assert SECRET.encode() not in outbox_bytes(outbox)


def test_a_plugin_cannot_take_over_the_env_scheme(monkeypatch, register_plugin):
    """The factory of `env` is handed the secret: always the core's."""

    class Plugin:
        @hookimpl
        def tunesmith_event_sinks(self):
            return {"env": lambda rest: pytest.fail("a plugin built the env sink")}

    register_plugin(Plugin(), "env-thief")
    monkeypatch.setenv("HOOK", "stdout")
    assert make_sink("env:HOOK").sink_url == "env:HOOK"


def test_a_retry_in_another_process_rebuilds_the_sink_from_the_variable(
    tmp_path, monkeypatch, receiver
):
    """`events retry` from cron: a process of its own, which reads the variable again (here
    pointing at the receiver, back up), and needs no --allow-sink: the mark covers env:NAME."""
    monkeypatch.setenv("HELPDESK_HOOK", DOWN)
    outbox = tmp_path / "o.sqlite"
    emit(Event(kind="a", message="later"), ["env:HELPDESK_HOOK"], outbox=outbox, retry=fast())
    env = {**os.environ, "HELPDESK_HOOK": hook_of(receiver)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tunesmith.cli import main; main()",
            "events",
            "retry",
            "--outbox",
            str(outbox),
            "--tries",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "re-sent 1 deliveries; 0 still failing" in done.stdout
    assert [e["message"] for _path, e in receiver.got] == ["later"]
    assert [d.status for d in list_deliveries(outbox)] == ["delivered"]


def test_a_retry_with_the_variable_unset_says_so_in_one_line_naming_it(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("HELPDESK_HOOK", DOWN)
    outbox = tmp_path / "o.sqlite"
    emit(Event(kind="a", message="x"), ["env:HELPDESK_HOOK"], outbox=outbox, retry=fast())
    monkeypatch.delenv("HELPDESK_HOOK")
    again = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")
    assert again.exit_code == 1
    (line,) = [line for line in again.output.splitlines() if "HELPDESK_HOOK is not set" in line]
    assert "env:HELPDESK_HOOK" in line
    assert [d.status for d in list_deliveries(outbox)] == ["failed"]  # left for the next one


def test_a_foreign_outbox_needs_consent_for_an_env_sink_too(tmp_path, monkeypatch, receiver):
    """The marks cover env:NAME like any recorded sink: an outbox from another setup cannot
    make a retry POST to the URL this machine's variable holds."""
    outbox = tmp_path / "theirs.sqlite"
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "their_home"))
    monkeypatch.setenv("HELPDESK_HOOK", DOWN)
    emit(Event(kind="a", message="theirs"), ["env:HELPDESK_HOOK"], outbox=outbox, retry=fast())
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "my_home"))
    monkeypatch.setenv("HELPDESK_HOOK", hook_of(receiver))
    (refused,) = retry(outbox, policy=fast())
    assert "--allow-sink 'env:HELPDESK_HOOK'" in refused.errors["env:HELPDESK_HOOK"]
    assert receiver.got == []
    (allowed,) = retry(outbox, policy=fast(), allow_sinks=["env:HELPDESK_HOOK"])
    assert allowed.delivered == ["env:HELPDESK_HOOK"] and len(receiver.got) == 1


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "HOOK is not set"),
        ("   ", "HOOK is empty"),
        ("env:OTHER", "HOOK holds another env: sink"),
        (f"https://hooks.example.com/{SECRET}", "write webhook: before its URL"),
        (SECRET, "HOOK holds no known sink (known: jsonl, stdout, webhook)"),
        (f"webhook:https:///{SECRET}", "it names no host"),
        (f"webhook:https://hooks.example.com/a b/{SECRET}", "spaces or control characters"),
        (f"jsonl:/tmp/{SECRET}.txt", "writes a .jsonl or .ndjson file"),
    ],
)
def test_an_unusable_variable_is_one_error_naming_it_never_its_value(monkeypatch, value, said):
    if value is None:
        monkeypatch.delenv("HOOK", raising=False)
    else:
        monkeypatch.setenv("HOOK", value)
    with pytest.raises(UserInputError) as caught:
        make_sink("env:HOOK")
    message = str(caught.value)
    assert message.startswith("event sink env:HOOK: ") and said in message
    assert "\n" not in message and SECRET not in message


def test_a_url_typed_after_env_is_refused_without_echoing_it():
    with pytest.raises(UserInputError) as caught:
        make_sink(f"env:https://hooks.example.com/{SECRET}")
    assert "env:NAME" in str(caught.value) and SECRET not in str(caught.value)


def test_an_env_sink_holding_stdout_is_refused_beside_json(monkeypatch):
    monkeypatch.setenv("HOOK", "stdout")
    with pytest.raises(UserInputError, match="--json"):
        refuse_stdout_sink_with_json(["env:HOOK"], as_json=True)
    monkeypatch.setenv("HOOK", DOWN)
    refuse_stdout_sink_with_json(["env:HOOK"], as_json=True)


def test_an_outbox_row_edited_to_another_variable_is_not_rebuilt(tmp_path, monkeypatch):
    """A row's sink rewritten to env:SOMETHING_ELSE (another variable of this machine, such as a
    second service's hook) breaks its mark: no retry POSTs there without consent."""
    monkeypatch.setenv("HOOK", DOWN)
    outbox = tmp_path / "o.sqlite"
    emit(Event(kind="a", message="x"), ["env:HOOK"], outbox=outbox, retry=fast())
    db = Store.open(outbox, namespace="events", migrations=OUTBOX_MIGRATIONS)
    db.execute("UPDATE outbox_deliveries SET sink = 'env:OTHER_HOOK'")
    db.close()
    monkeypatch.setenv("OTHER_HOOK", "stdout")
    (report,) = retry(outbox, policy=fast())
    assert "did not record" in report.errors["env:OTHER_HOOK"]
