"""A store's free pages given back to the disk: incremental auto-vacuum mode chosen when a file
is created, and `reclaim` (short transactions in that mode, one full VACUUM otherwise)."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from tunesmith import store_space
from tunesmith.errors import UserInputError
from tunesmith.store import Store

NOTES = ["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"]


def filled(path, *, incremental: bool, rows: int = 2000) -> Store:
    """A store of ``rows`` 2 KB notes, nine in ten of them deleted (their pages free)."""
    db = Store.open(path, migrations=NOTES, incremental_vacuum=incremental)
    with db.transaction() as tx:
        tx.executemany("INSERT INTO notes(body) VALUES (?)", [("x" * 2000,)] * rows)
    db.execute("DELETE FROM notes WHERE id % 10 != 0")
    db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def mode(db: Store) -> int:
    return int(db.query("PRAGMA auto_vacuum")[0][0])


def test_a_store_created_with_incremental_vacuum_is_in_that_mode_and_others_are_not(tmp_path):
    with Store.open(tmp_path / "new.sqlite", migrations=NOTES, incremental_vacuum=True) as db:
        assert mode(db) == store_space.INCREMENTAL and store_space.is_incremental(db)
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
    with Store.open(tmp_path / "plain.sqlite", migrations=NOTES) as db:
        assert mode(db) == 0 and not store_space.is_incremental(db)


def test_an_existing_file_keeps_its_mode_when_opened_with_incremental_vacuum(tmp_path):
    path = tmp_path / "old.sqlite"
    Store.open(path, migrations=NOTES).close()
    with Store.open(path, migrations=NOTES, incremental_vacuum=True) as db:
        assert mode(db) == 0


def test_reclaim_gives_back_an_incremental_stores_free_pages_in_short_transactions(tmp_path):
    path = tmp_path / "s.sqlite"
    db = filled(path, incremental=True)
    before, free = store_space.file_sizes(db)
    assert free > before / 2
    pages = free // int(db.query("PRAGMA page_size")[0][0])
    commits = []
    db._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    assert store_space.reclaim(db, pages=100) == "incremental"
    db._conn.set_trace_callback(None)
    after, free = store_space.file_sizes(db)
    assert free == 0 and after < before / 3
    assert path.stat().st_size == after  # the checkpoint wrote the shrunk file
    assert len(commits) >= pages // 100  # 100 pages a transaction, never all at once
    assert db.query("SELECT COUNT(*) FROM notes")[0][0] == 200
    db.close()


def test_reclaim_of_an_older_store_is_one_full_vacuum_that_switches_the_mode_on(tmp_path):
    db = filled(tmp_path / "s.sqlite", incremental=False)
    before, _free = store_space.file_sizes(db)
    assert store_space.reclaim(db) == "full"
    after, free = store_space.file_sizes(db)
    assert free == 0 and after < before / 3 and store_space.is_incremental(db)
    db.execute("DELETE FROM notes WHERE id % 20 != 0")
    assert store_space.reclaim(db) == "incremental"
    assert db.query("SELECT COUNT(*) FROM notes")[0][0] == 100
    db.close()


def test_reclaim_refuses_a_full_vacuum_without_twice_the_file_free_and_changes_nothing(
    tmp_path, monkeypatch
):
    db = filled(tmp_path / "s.sqlite", incremental=False)
    size, free = store_space.file_sizes(db)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**12, 0, size))
    with pytest.raises(UserInputError) as caught:
        store_space.reclaim(db, flag="--vacuum --full", rows="events")
    message = str(caught.value)
    assert message.startswith(f"{db.path}: --vacuum --full rewrites the database once")
    assert "The events are deleted; their space stays in the file and new events fill it" in (
        message
    )
    assert "\n" not in message
    assert store_space.file_sizes(db) == (size, free) and mode(db) == 0
    db.close()


def test_opening_an_existing_file_with_incremental_vacuum_writes_nothing_into_it(tmp_path):
    # The pragma wrote the file's header at every open: a dry run or an `events list` changed
    # the file, and a read-only copy could not be opened.
    path = tmp_path / "kept.sqlite"
    with Store.open(path, migrations=NOTES, incremental_vacuum=True) as db:
        db.execute("INSERT INTO notes(body) VALUES ('x')")
    for incremental in (True, False):
        before = path.read_bytes()
        with Store.open(path, migrations=NOTES, incremental_vacuum=incremental) as db:
            assert store_space.is_incremental(db)
            db.query("SELECT COUNT(*) FROM notes")
        assert path.read_bytes() == before
