"""A KB's conversation database is the hand-offs' outbox: one made now gives pruned space back
with `events prune --vacuum` while `serve` keeps emitting, as the core's own outbox does."""

from __future__ import annotations

import sqlite3

from tunesmith.events import emit
from tunesmith.hooktypes import Event
from tunesmith_support.conversations import Conversations


class Sink:
    sink_url = "memory:desk"

    def send(self, event: Event) -> None:
        pass


def test_a_new_conversation_database_prunes_with_vacuum_without_a_full_rewrite(tmp_path, cli):
    path = tmp_path / "kb" / "conversations.sqlite"
    log = Conversations.open(path)
    try:
        emit(Event(kind="support.handoff", message="agent please"), [Sink()], outbox=log.store)
    finally:
        log.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    done = cli("events", "prune", "--outbox", str(path), "--delivered-before", "1d", "--vacuum")
    assert done.exit_code == 0, done.output
    # It said "made before it could be done ... run --vacuum --full once" for a file made today.
    assert "space not given back" not in done.output
