"""Upgrading with an outbox on disk: deliveries that an earlier tunesmith recorded (before
delivery rows carried a mark) stay listed and are re-sent with `events retry --allow-sink`; a
failed delivery says the command that re-sends it from the outbox it is kept in."""

from __future__ import annotations

import json
import sqlite3

from tunesmith.events import RetryPolicy, emit, list_deliveries
from tunesmith.hooktypes import Event

#: The outbox tables as yesterday's tunesmith made them (schema version 2: no ``mark``).
OLD_OUTBOX = """
CREATE TABLE schema_version (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO schema_version VALUES ('events', 2);
CREATE TABLE outbox_events (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
    payload TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE outbox_deliveries (
    event_id TEXT NOT NULL REFERENCES outbox_events(id) ON DELETE CASCADE,
    sink TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_attempt_at TEXT,
    delivered_at TEXT, owner TEXT,
    PRIMARY KEY (event_id, sink)
);
"""


class Down:
    """A sink that always fails."""

    sink_url = "memory:down"

    def send(self, event: Event) -> None:
        raise ConnectionError("refused")


def test_an_outbox_from_before_marks_keeps_its_failed_delivery_for_retry_allow_sink(
    tmp_path, monkeypatch, cli
):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    outbox = tmp_path / "conversations.sqlite"
    target = tmp_path / "handoffs.jsonl"
    sink = f"jsonl:{target}"
    with sqlite3.connect(outbox) as db:
        db.executescript(OLD_OUTBOX)
        db.execute(
            "INSERT INTO outbox_events VALUES ('e1', 'support.handoff', 'tunesmith-support', "
            "'hand-off', '{\"question\": \"a person please\"}', '2026-12-06T10:00:00+00:00')"
        )
        db.execute(
            "INSERT INTO outbox_deliveries (event_id, sink, status, attempts, last_error) "
            "VALUES ('e1', ?, 'failed', 3, 'OSError: disk full')",
            (sink,),
        )
    listed = cli("events", "list", "--outbox", str(outbox), "--status", "failed")
    assert listed.exit_code == 0 and sink in listed.output
    refused = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")
    assert refused.exit_code == 1 and f"--allow-sink '{sink}'" in refused.output
    assert not target.exists()
    allowed = cli("events", "retry", "--outbox", str(outbox), "--tries", "1", "--allow-sink", sink)
    assert allowed.exit_code == 0, allowed.output
    sent = json.loads(target.read_text(encoding="utf-8"))
    assert sent["id"] == "e1" and sent["payload"] == {"question": "a person please"}
    assert [(d.event.id, d.status) for d in list_deliveries(outbox)] == [("e1", "delivered")]


def test_a_failed_delivery_names_the_outbox_that_retry_must_be_given(tmp_path, monkeypatch, capsys):
    # A KB's conversations.sqlite is its hand-offs' outbox: a bare `tunesmith events retry`
    # read the default outbox and said "re-sent 0 deliveries; 0 still failing".
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    kb_outbox = tmp_path / "kb" / "conversations.sqlite"
    kb_outbox.parent.mkdir()
    policy = RetryPolicy(tries=1, base_delay=0.01)
    emit(Event(kind="support.handoff", message="m"), [Down()], outbox=kb_outbox, retry=policy)
    said = capsys.readouterr().err
    assert f"`tunesmith events retry --outbox {kb_outbox}` re-sends it" in said
    emit(Event(kind="support.handoff", message="m"), [Down()], retry=policy)  # the default one
    assert "`tunesmith events retry` re-sends it" in capsys.readouterr().err
