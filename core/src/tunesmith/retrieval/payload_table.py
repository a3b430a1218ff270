"""The payload table beside the FAISS index: ``items(rid, id, payload)`` in SQLite.

FAISS holds int64 rowids; this table maps each to its string id and JSON payload. Rowids come
from a counter (``state.next_rid``) and are never reused, so a stale rowid can never name
another item. While an index is open the table lives in an in-memory database, saved with the
FAISS index as one snapshot. The functions take the connection; the caller serialises access
to it and decides the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import DataError, UserInputError

#: Ids or rowids per ``IN (...)`` query.
_SQL_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# ---------------------------------------------------------------------- the table's lifetime


def new_table() -> sqlite3.Connection:
    """An empty payload table in a new in-memory database."""
    # check_same_thread=False: the index serialises access with its own lock.
    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.executescript(_SCHEMA)
    db.isolation_level = ""  # back to implicit transactions, so `with db:` commits or rolls back
    return db


def load_table(file: Path) -> sqlite3.Connection:
    """The payload table saved in ``file``, copied into memory (a :class:`DataError` when
    missing or damaged)."""
    if not file.is_file():
        raise DataError("missing payloads.sqlite", path=file.parent)
    db = new_table()
    try:
        # A percent-encoded URI: a raw "#", "?" or "%" in the folder name would cut the path
        # short, and SQLite would open (and create) another file.
        source = sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True)
        try:
            source.backup(db)
        finally:
            source.close()
        db.execute("SELECT rid, id, payload FROM items LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise DataError(f"damaged payload table ({exc})", path=file) from None
    return db


def save_table(db: sqlite3.Connection, file: Path) -> None:
    """Copy the table into a new SQLite file."""
    target = sqlite3.connect(file)
    try:
        # A new file in a temporary folder needs no rollback journal, and without one a copy
        # cut at the file size limit stays that size, the evidence no_room_errno reads (rolled
        # back, it was 0 bytes and "disk I/O error" a traceback).
        target.execute("PRAGMA journal_mode = OFF")
        db.backup(target)
    finally:
        target.close()


# ---------------------------------------------------------------------- checking input


def check_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` as a list, refused unless each is a distinct, non-empty, storable string."""
    if isinstance(ids, str):
        raise UserInputError("ids must be a list of strings, not one string")
    ids = list(ids)
    for item_id in ids:
        if not isinstance(item_id, str) or not item_id:
            raise UserInputError(f"ids must be non-empty strings, got {item_id!r}")
        if found := lone_surrogate(item_id):
            raise UserInputError(
                f"id {item_id!r} holds U+{found[1]:04X}, a lone surrogate that is not a "
                "character (SQLite cannot store it)"
            )
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        shown = ", ".join(repr(i) for i in list(dict.fromkeys(dupes))[:5])
        raise UserInputError(f"duplicate ids in one call: {shown}")
    return ids


def payload_json(item_id: str, payload: Mapping[str, Any] | None, text: str | None) -> str:
    """The JSON stored for one item: its payload, with ``text`` as ``"text"`` unless the
    payload has that key."""
    if payload is not None and not isinstance(payload, Mapping):
        raise UserInputError(
            f"payload for id {item_id!r} must be a dict, got {type(payload).__name__}"
        )
    data = dict(payload or {})
    if text is not None:
        data.setdefault("text", text)
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserInputError(
            f"payload for id {item_id!r} is not JSON-serialisable ({exc})"
        ) from None
    if found := lone_surrogate(encoded):
        what = "text" if text is not None and lone_surrogate(text) else "payload"
        raise UserInputError(
            f"{what} for id {item_id!r} holds U+{found[1]:04X}, a lone surrogate that is not "
            "a character (SQLite cannot store it)"
        )
    return encoded


def storable(item_id: object) -> TypeGuard[str]:
    """Whether ``item_id`` could be a stored id: a string SQLite can hold."""
    return isinstance(item_id, str) and lone_surrogate(item_id) is None


# ---------------------------------------------------------------------- reading


def count_rows(db: sqlite3.Connection) -> int:
    """How many items the table holds."""
    return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]


def has_id(db: sqlite3.Connection, item_id: str) -> bool:
    """Whether ``item_id`` is stored."""
    return db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is not None


def payload_of(db: sqlite3.Connection, item_id: str) -> str | None:
    """The payload JSON of ``item_id`` (``None`` when absent)."""
    row = db.execute("SELECT payload FROM items WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else row[0]


def rid_of(db: sqlite3.Connection, item_id: str) -> int | None:
    """The rowid of ``item_id`` (``None`` when absent)."""
    row = db.execute("SELECT rid FROM items WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else int(row[0])


def all_ids(db: sqlite3.Connection) -> list[str]:
    """Every id, in insertion order."""
    return [r[0] for r in db.execute("SELECT id FROM items ORDER BY rid")]


def all_rows(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(id, payload JSON) of every item, in insertion order, in one query."""
    return db.execute("SELECT id, payload FROM items ORDER BY rid").fetchall()


def rids_of(db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, int]:
    """The rowid of each stored id (ids not stored are left out)."""
    # An id SQLite cannot hold (not a string, a lone surrogate) is in no index.
    ids = [i for i in ids if storable(i)]
    found: dict[str, int] = {}
    for start in range(0, len(ids), _SQL_CHUNK):
        chunk = ids[start : start + _SQL_CHUNK]
        sql = f"SELECT id, rid FROM items WHERE id IN ({', '.join('?' * len(chunk))})"
        found.update(db.execute(sql, chunk).fetchall())
    return found


def ids_of_rids(db: sqlite3.Connection, rids: Iterable[int]) -> dict[int, str]:
    """The string id of each stored rowid (rowids no longer stored are left out)."""
    wanted = sorted(set(rids))
    out: dict[int, str] = {}
    for start in range(0, len(wanted), _SQL_CHUNK):
        chunk = wanted[start : start + _SQL_CHUNK]
        sql = f"SELECT rid, id FROM items WHERE rid IN ({', '.join('?' * len(chunk))})"
        out.update(db.execute(sql, chunk))
    return out


def rows_of_rids(db: sqlite3.Connection, rids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(id, payload JSON) of each of these sorted, distinct rowids that is stored."""
    rows: dict[int, tuple[str, str]] = {}
    for start in range(0, len(rids), _SQL_CHUNK):
        chunk = rids[start : start + _SQL_CHUNK]
        sql = f"SELECT rid, id, payload FROM items WHERE rid IN ({', '.join('?' * len(chunk))})"
        for rid, item_id, payload in db.execute(sql, chunk):
            rows[rid] = (item_id, payload)
    return rows


def next_rid(db: sqlite3.Connection) -> int:
    """The first rowid not yet given out."""
    # rids are never reused, so a stale rid can never name another item.
    row = db.execute("SELECT value FROM state WHERE key = 'next_rid'").fetchone()
    return int(row[0]) if row else 1


# ---------------------------------------------------------------------- writing


def delete_rids(db: sqlite3.Connection, rids: Iterable[int]) -> None:
    """Remove the items with these rowids."""
    db.executemany("DELETE FROM items WHERE rid = ?", [(int(r),) for r in rids])


def insert_rows(
    db: sqlite3.Connection, rids: list[int], ids: list[str], payloads: list[str], next_free: int
) -> None:
    """Store new items under fresh rowids and move the rowid counter to ``next_free``."""
    db.executemany(
        "INSERT INTO items (rid, id, payload) VALUES (?, ?, ?)",
        zip(rids, ids, payloads, strict=True),
    )
    db.execute(
        "INSERT OR REPLACE INTO state (key, value) VALUES ('next_rid', ?)",
        (next_free,),
    )
