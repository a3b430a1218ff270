"""The outbox's tables in a :class:`~tunesmith.store.Store`, where it lives by default, and opening
it (once per path and process)."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from tunesmith.home import tunesmith_home
from tunesmith.store import Store

STATUSES = ("pending", "delivered", "failed")

OUTBOX_NAMESPACE = "events"
OUTBOX_MIGRATIONS = [
    """
    CREATE TABLE outbox_events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox_deliveries (
        event_id TEXT NOT NULL REFERENCES outbox_events(id) ON DELETE CASCADE,
        sink TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_attempt_at TEXT,
        delivered_at TEXT,
        PRIMARY KEY (event_id, sink)
    );
    CREATE INDEX outbox_deliveries_status ON outbox_deliveries(status);
    CREATE INDEX outbox_events_created ON outbox_events(created_at);
    """,
    # The process delivering a row (see owners.py): two `events retry` at once, or a retry of
    # pending rows beside a live emitter, each sent the same delivery.
    """
    ALTER TABLE outbox_deliveries ADD COLUMN owner TEXT;
    """,
    # The HMAC that says this setup recorded the delivery (see marks.py): `events retry` re-sends
    # only those, so an outbox from elsewhere cannot choose where a retry POSTs or writes.
    """
    ALTER TABLE outbox_deliveries ADD COLUMN mark TEXT;
    """,
    # Each `events prune` (see retention.py): an event missing from the outbox and created before
    # a cut-off may have been delivered and removed, not lost before it was recorded.
    """
    CREATE TABLE outbox_prunes (pruned_at TEXT NOT NULL, cutoff TEXT NOT NULL);
    """,
    # A sink that keeps failing is held for a cool-down (see holds.py), seen by every process
    # emitting into this outbox: each emit to a webhook down for hours paid its tries and
    # timeouts, and so did the hand-off or alert check behind it.
    """
    CREATE TABLE outbox_sinks (
        sink TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        holds INTEGER NOT NULL DEFAULT 0,
        held_until TEXT,
        last_error TEXT,
        prober TEXT,
        probe_at TEXT
    );
    """,
]


def default_outbox_path() -> Path:
    """``$TUNESMITH_HOME/events.sqlite`` (``~/.cache/tunesmith`` when the variable is unset)."""
    return tunesmith_home() / "events.sqlite"


_open_outboxes: dict[str, Store] = {}
_migrated: weakref.WeakSet[Store] = weakref.WeakSet()
_outbox_lock = threading.Lock()


def open_outbox(outbox: Store | str | Path | None = None) -> Store:
    """The outbox store: a given Store (tables added to it), a path, or the default file.

    Paths are opened once per process and kept open (a Store is thread-safe), so frequent
    emits do not pay for opening and migrating each time.
    """
    with _outbox_lock:
        if isinstance(outbox, Store):
            if outbox not in _migrated:
                outbox.migrate(OUTBOX_NAMESPACE, OUTBOX_MIGRATIONS)
                # Inside the caller's transaction (record()) the tables roll back with it:
                # remembered only once committed, else the next emit finds no table.
                if not outbox.in_transaction:
                    _migrated.add(outbox)
            return outbox
        path = Path(outbox) if outbox is not None else default_outbox_path()
        key = str(path.resolve())
        store = _open_outboxes.get(key)
        if store is None:
            # A new outbox in incremental auto-vacuum mode: `events prune --vacuum` gives its
            # space back in short transactions, while services keep emitting.
            store = Store.open(
                path,
                namespace=OUTBOX_NAMESPACE,
                migrations=OUTBOX_MIGRATIONS,
                incremental_vacuum=True,
            )
            _open_outboxes[key] = store
            _migrated.add(store)
        return store


def holds_no_outbox(outbox: Store | str | Path | None) -> bool:
    """True for a path with no file yet, and for a database file that exists without the
    outbox's tables: reading must create neither the file nor the tables (and WAL mode) in it,
    such as another program's file named by mistake. A file SQLite cannot read is left to the
    store's one-line error."""
    import sqlite3

    if isinstance(outbox, Store) or str(outbox) == ":memory:":
        return False
    path = Path(outbox) if outbox is not None else default_outbox_path()
    if not path.exists():
        return True
    if outbox is None or not path.is_file():
        return False
    try:
        db = sqlite3.connect(f"{Path(outbox).absolute().as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_events'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return found is None
