"""The finance tables in the core store: documents, their topics and tickers, ingest progress,
reported issues and alerts. One module, so another database could stand behind it later.

Rule for a known id: **the first stored version stays**. A later document with the same id and
the same text adds nothing; one with a different text is not stored, and the change is recorded
as an issue (``changed_text``) and reported by ingest as a warning. Scores, trends and alerts
that were computed from a document therefore never change under it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.store import DEFAULT_TIMEOUT, Store
from tunesmith.store_upgrade import Rewrite

NAMESPACE = "finance"

#: Documents whose key rows migration 6 copies per statement: the bar moves between them.
REWRITE_CHUNK = 50_000


def _keys_with_facts(tx: Any) -> None:
    """Migration 6: ``finance_keys`` rebuilt with each document's time, negative flag and
    score, ordered by kind, key and time.

    The same schema as the SQL it replaced (``finance_keys`` WITHOUT ROWID, its doc_id index
    keeping the cascade from a pruned document a lookup, the documents' time index covering
    label and score so that `--by all`, the prior and `--since` read no document row), filled
    in half the time (41 s -> 21 s at 1,000,000 documents): the documents are scanned in
    rowid order, each looking up its keys in their (doc_id, kind, key) index, instead of each
    key looking up its document by id at random; the store runs it with foreign key checks off
    (the rows come from the join, so every doc_id is a stored document). In chunks of
    documents, so that the store's bar moves."""
    # The text as the SQL migration wrote it: sqlite_master keeps it, fresh or migrated alike
    tx.execute(
        "CREATE TABLE finance_keys_v6 (\n"
        "    kind TEXT NOT NULL CHECK (kind IN ('topic', 'ticker')),\n"
        "    key TEXT NOT NULL,\n"
        "    ts REAL NOT NULL,\n"
        "    doc_id TEXT NOT NULL REFERENCES finance_documents(id) ON DELETE CASCADE,\n"
        "    negative INTEGER NOT NULL,\n"
        "    score REAL NOT NULL,\n"
        "    PRIMARY KEY (kind, key, ts, doc_id)\n"
        ") WITHOUT ROWID"
    )
    top = int(tx.query("SELECT MAX(rowid) FROM finance_documents")[0][0] or 0)
    for after in range(0, top, REWRITE_CHUNK):
        tx.execute(
            "INSERT INTO finance_keys_v6 (kind, key, ts, doc_id, negative, score) "
            "SELECT k.kind, k.key, d.ts, k.doc_id, d.label = 'negative', d.score "
            "FROM finance_documents d CROSS JOIN finance_keys k ON k.doc_id = d.id "
            "WHERE d.rowid > ? AND d.rowid <= ?",
            (after, after + REWRITE_CHUNK),
        )
        # The fill is about half of the step; the drop and the two indexes the rest
        tx.progress(0.55 * min(after + REWRITE_CHUNK, top) / top)
    for fraction, statement in (
        (0.65, "DROP TABLE finance_keys"),
        (0.65, "ALTER TABLE finance_keys_v6 RENAME TO finance_keys"),
        (0.8, "CREATE INDEX finance_keys_doc ON finance_keys(doc_id)"),
        (0.8, "DROP INDEX finance_documents_ts"),
        (1.0, "CREATE INDEX finance_documents_time ON finance_documents(ts, label, score)"),
    ):
        tx.execute(statement)
        tx.progress(fraction)


MIGRATIONS = [
    """
    CREATE TABLE finance_documents (
        id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        time TEXT NOT NULL,
        source TEXT,
        text TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        chars INTEGER NOT NULL,
        truncated INTEGER NOT NULL DEFAULT 0,
        label TEXT NOT NULL,
        score REAL NOT NULL,
        p_negative REAL NOT NULL,
        p_neutral REAL NOT NULL,
        p_positive REAL NOT NULL,
        model TEXT,
        origin TEXT,
        line INTEGER,
        ingested_at TEXT NOT NULL
    );
    CREATE INDEX finance_documents_ts ON finance_documents(ts);
    CREATE TABLE finance_keys (
        doc_id TEXT NOT NULL REFERENCES finance_documents(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('topic', 'ticker')),
        key TEXT NOT NULL,
        PRIMARY KEY (doc_id, kind, key)
    );
    CREATE INDEX finance_keys_kind_key ON finance_keys(kind, key);
    CREATE TABLE finance_progress (
        path TEXT PRIMARY KEY,
        offset INTEGER NOT NULL,
        line INTEGER NOT NULL,
        header TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE finance_issues (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT,
        line INTEGER,
        doc_id TEXT,
        kind TEXT NOT NULL,
        detail TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE finance_alerts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        n INTEGER NOT NULL,
        negatives INTEGER NOT NULL,
        share REAL NOT NULL,
        baseline REAL NOT NULL,
        z REAL NOT NULL,
        p_value REAL NOT NULL,
        mean_score REAL NOT NULL,
        words TEXT NOT NULL,
        examples TEXT NOT NULL,
        detector TEXT NOT NULL,
        created_at TEXT NOT NULL,
        event_id TEXT
    );
    CREATE INDEX finance_alerts_key ON finance_alerts(kind, key, window_start);
    CREATE TABLE finance_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # The bytes just before a file's offset, hashed: a file replaced by a longer one (a rotated
    # log) is told from the one read so far, so it is read again instead of from the old offset.
    """
    ALTER TABLE finance_progress ADD COLUMN fingerprint TEXT;
    """,
    # The zone an alert's buckets were cut in (`--tz`); NULL (alerts stored before) is UTC.
    """
    ALTER TABLE finance_alerts ADD COLUMN tz TEXT;
    """,
    # How many negative documents an alert's words were found from: in its event payload
    # whether it is sent when found or later (pending). NULL for alerts stored before.
    """
    ALTER TABLE finance_alerts ADD COLUMN explained INTEGER;
    """,
    # The detector settings an alert was found with (JSON: bucket, window, half-life, ...,
    # prior; durations in seconds): alerts of several buckets in one database are told apart.
    # NULL for alerts stored before.
    """
    ALTER TABLE finance_alerts ADD COLUMN settings TEXT;
    """,
    # Speed at a million documents (docs/finance.md "Long-running streams"). A key row carries
    # its document's time, negative flag and score (a document never changes once stored), in
    # key and time order: trends, the detector and an alert's window read one key's rows as a
    # range of this table instead of looking up every document by id (5.9 s -> 2.7 s for
    # hourly topic trends over 1,000,000 documents). See _keys_with_facts.
    Rewrite(
        _keys_with_facts,
        count="SELECT COUNT(*) FROM finance_documents",
        noun="documents",
        seconds_per_million=30.0,
    ),
    # A `finance watch` of the release before migration 6, still running when today's code
    # migrated its file (it checked the version only when it opened it), writes key rows
    # without the document's time, flag and score; SQLite's OR IGNORE dropped them as NOT NULL
    # failures without a word, so its documents lost their topics and tickers. The trigger
    # writes the full row from the document that statement's transaction just stored instead.
    """
    CREATE TRIGGER finance_keys_from_old_writers BEFORE INSERT ON finance_keys
    WHEN NEW.ts IS NULL OR NEW.negative IS NULL OR NEW.score IS NULL
    BEGIN
        INSERT OR IGNORE INTO finance_keys (kind, key, ts, doc_id, negative, score)
            SELECT NEW.kind, NEW.key, d.ts, d.id, d.label = 'negative', d.score
            FROM finance_documents d WHERE d.id = NEW.doc_id;
        SELECT RAISE(IGNORE);
    END;
    """,
    # The dashboard's first check (docs/finance.md "Long-running streams"): each key's hourly
    # counts read in this index's order, with no sort of 1.5 million rows into hours (4.7 s
    # -> 2.0 s for topics and tickers at 1,000,000 documents, load 7). The hour is written as
    # trends.KEY_HOUR_SQL writes it, to the character: SQLite uses an index on an expression
    # only for that expression.
    """
    CREATE INDEX finance_keys_hour ON finance_keys(
        kind, key, (CAST(ts / 3600 AS INTEGER) - (ts / 3600 < CAST(ts / 3600 AS INTEGER))),
        negative, score
    );
    """,
    # Triage (docs/finance.md "Triage: acknowledge, noise, mute"). Keys muted for a while, and
    # each alert's marks as a log (acknowledged, noise, reopened; who, when, a note), so a
    # later mark never overwrites what an analyst wrote. A surge found on a muted key is stored
    # with a `muted` mark naming the mute, and never sent. Alerts stored before have no mark:
    # open. No column is added to finance_alerts: its rows stay as earlier versions wrote them.
    """
    CREATE TABLE finance_mutes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        start REAL NOT NULL,
        until REAL NOT NULL,
        who TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX finance_mutes_key ON finance_mutes(kind, key, until);
    CREATE TABLE finance_alert_marks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL REFERENCES finance_alerts(id) ON DELETE CASCADE,
        mark TEXT NOT NULL CHECK (mark IN ('acknowledged', 'noise', 'reopened', 'muted')),
        who TEXT NOT NULL,
        at TEXT NOT NULL,
        note TEXT,
        mute_id INTEGER REFERENCES finance_mutes(id)
    );
    CREATE INDEX finance_alert_marks_alert ON finance_alert_marks(alert_id, id);
    """,
]

#: ``finance_meta`` name of the last `finance prune`'s cut-off (Unix seconds): ingest stores no
#: document older than it, so a file read again after a prune does not bring pruned ones back.
RETENTION_CUTOFF = "retention_cutoff"

#: How many bytes before the offset the fingerprint covers.
FINGERPRINT_BYTES = 256


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def open_store(path: str | Path, *, timeout: float | None = None) -> Any:
    """Open (or create) the finance database at ``path``, migrated to the current schema.

    A new one is made in incremental auto-vacuum mode: `finance prune --vacuum` then gives its
    space back in short transactions, never one full ``VACUUM`` holding a running `watch`'s
    lock for the whole file (that is left to databases made before)."""
    return Store.open(
        path,
        namespace=NAMESPACE,
        migrations=MIGRATIONS,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        incremental_vacuum=True,
    )


@dataclass
class StoredDocument:
    """One scored document as the store keeps it."""

    id: str
    ts: float
    time: str
    source: str | None
    text: str
    text_hash: str
    chars: int
    truncated: bool
    label: str
    score: float
    p_negative: float
    p_neutral: float
    p_positive: float
    topics: list[str]
    tickers: list[str]
    model: str | None = None
    origin: str | None = None
    line: int | None = None


def known_hashes(db: Any, ids: Sequence[str]) -> dict[str, str]:
    """``id -> text_hash`` of the ids among ``ids`` that are stored already."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):  # SQLite's parameter limit
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
            f"SELECT id, text_hash FROM finance_documents WHERE id IN ({marks})", chunk
        ):
            found[row["id"]] = row["text_hash"]
    return found


def insert_documents(tx: Any, docs: Iterable[StoredDocument]) -> int:
    """Insert documents and their keys inside ``tx``; an id already stored is left as it is."""
    stamp = now_iso()
    added = 0
    for doc in docs:
        result = tx.execute(
            "INSERT OR IGNORE INTO finance_documents (id, ts, time, source, text, text_hash, "
            "chars, truncated, label, score, p_negative, p_neutral, p_positive, model, origin, "
            "line, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.id,
                doc.ts,
                doc.time,
                doc.source,
                doc.text,
                doc.text_hash,
                doc.chars,
                int(doc.truncated),
                doc.label,
                doc.score,
                doc.p_negative,
                doc.p_neutral,
                doc.p_positive,
                doc.model,
                doc.origin,
                doc.line,
                stamp,
            ),
        )
        if result.rowcount != 1:
            continue
        added += 1
        # The document's time, flag and score beside each key: see migration 6.
        facts = (doc.ts, doc.id, int(doc.label == "negative"), doc.score)
        keys = [("topic", t, *facts) for t in doc.topics]
        keys += [("ticker", t, *facts) for t in doc.tickers]
        if keys:
            tx.executemany(
                "INSERT OR IGNORE INTO finance_keys (kind, key, ts, doc_id, negative, score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                keys,
            )
    return added


def record_issues(tx: Any, issues: Iterable[Any]) -> None:
    """Store reported issues (skipped rows, changed texts, unknown topics, truncations)."""
    stamp = now_iso()
    tx.executemany(
        "INSERT INTO finance_issues (origin, line, doc_id, kind, detail, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(i.origin, i.line, i.doc_id, i.kind, i.detail, stamp) for i in issues],
    )


@dataclass(frozen=True)
class Progress:
    """How far a file is ingested: byte offset, line, CSV header, and the fingerprint of the
    bytes before the offset (``None`` for progress recorded before fingerprints)."""

    offset: int
    line: int
    header: str | None
    fingerprint: str | None = None


def fingerprint(path: str | Path, offset: int) -> str | None:
    """The SHA-256 of the :data:`FINGERPRINT_BYTES` bytes of ``path`` before ``offset``;
    ``None`` when the file is gone or shorter."""
    try:
        with Path(path).open("rb") as handle:
            return handle_fingerprint(handle, offset)
    except OSError:
        return None


def handle_fingerprint(handle: Any, offset: int) -> str | None:
    """:func:`fingerprint` of the file an open ``handle`` reads, without moving it: the bytes
    ingest read, even when the path names another file by now (a log rotated meanwhile)."""
    import hashlib
    import os

    start = max(0, offset - FINGERPRINT_BYTES)
    try:
        data = os.pread(handle.fileno(), offset - start, start)
    except OSError:
        return None
    if len(data) != offset - start:
        return None
    return hashlib.sha256(data).hexdigest()


def get_progress(db: Any, path: str) -> Progress | None:
    """The progress committed for a file, or ``None``."""
    rows = db.query(
        "SELECT offset, line, header, fingerprint FROM finance_progress WHERE path = ?",
        (str(path),),
    )
    if not rows:
        return None
    row = rows[0]
    return Progress(int(row["offset"]), int(row["line"]), row["header"], row["fingerprint"])


def set_progress(
    tx: Any, path: str, offset: int, line: int, header: str | None, print_: str | None = None
) -> None:
    """Record how far a file is ingested, in the same transaction as the batch it ends."""
    tx.execute(
        "INSERT INTO finance_progress (path, offset, line, header, fingerprint, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET offset = excluded.offset, "
        "line = excluded.line, header = excluded.header, fingerprint = excluded.fingerprint, "
        "updated_at = excluded.updated_at",
        (str(path), offset, line, header, print_, now_iso()),
    )


def move_progress(tx: Any, moves: dict[str, str]) -> None:
    """Move progress records ``old path -> new path`` inside ``tx``: files renamed in a watched
    folder (a rotated log) keep how far they were read. All are read before any is written, so
    a chain (``a.jsonl.1 -> a.jsonl.2`` and ``a.jsonl -> a.jsonl.1``) moves each once."""
    records = {
        old: tx.query(
            "SELECT offset, line, header, fingerprint FROM finance_progress WHERE path = ?", (old,)
        )
        for old in moves
    }
    for old in moves:
        tx.execute("DELETE FROM finance_progress WHERE path = ?", (old,))
    for old, new in moves.items():
        if not records[old]:
            tx.execute("DELETE FROM finance_progress WHERE path = ?", (new,))
            continue
        row = records[old][0]
        set_progress(
            tx, new, int(row["offset"]), int(row["line"]), row["header"], row["fingerprint"]
        )


def set_meta(db: Any, name: str, value: Any) -> None:
    """Remember a setting (e.g. the model that scored the documents); ``db`` may be a
    transaction."""
    db.execute(
        "INSERT INTO finance_meta (name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, json.dumps(value)),
    )


def get_meta(db: Any, name: str) -> Any:
    """A remembered setting, or ``None``."""
    rows = db.query("SELECT value FROM finance_meta WHERE name = ?", (name,))
    return json.loads(rows[0]["value"]) if rows else None


def retention_cutoff(db: Any) -> float | None:
    """The cut-off of the last `finance prune` (Unix seconds), or None: documents older than it
    are not stored (:mod:`tunesmith_finance.retention`)."""
    value = get_meta(db, RETENTION_CUTOFF)
    return float(value) if isinstance(value, int | float) else None


def count_documents(db: Any) -> int:
    """How many documents are stored."""
    return int(db.query("SELECT COUNT(*) AS n FROM finance_documents")[0]["n"])


def discard_if_empty(db: Any, path: str | Path) -> bool:
    """Close and remove the database at ``path`` (with its ``-wal``, ``-shm`` and ``-journal``)
    when it holds no document: for an ingest that created it and then failed before storing any
    (an empty standard input, a file without a text column), where an empty file would look like
    a result. True when it was removed; a database with documents is left open and untouched."""
    if count_documents(db) != 0:
        return False
    db.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return True


def _read_only(path: str | Path, sql: str) -> list[Any] | None:
    """The rows of ``sql`` on the database at ``path``, read without creating, migrating or
    waiting for the file; None when it cannot be read now (missing, locked, not a finance
    database)."""
    import sqlite3

    path = Path(path).expanduser()
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None


def recorded_model(path: str | Path) -> str | None:
    """The model `finance ingest` recorded in the database at ``path`` (:func:`get_meta`),
    read without creating, migrating or waiting for the file; None when there is none or the
    file cannot be read now (missing, locked, not a finance database)."""
    rows = _read_only(path, "SELECT value FROM finance_meta WHERE name = 'model'")
    try:
        value = json.loads(rows[0][0]) if rows else None
    except (ValueError, TypeError):  # not JSON text: not a value ingest wrote
        return None
    return value if isinstance(value, str) and value else None


def has_documents(path: str | Path) -> bool:
    """Whether the database at ``path`` holds a document, read as :func:`recorded_model`
    reads (False when it cannot be read now)."""
    return bool(_read_only(path, "SELECT 1 FROM finance_documents LIMIT 1"))
