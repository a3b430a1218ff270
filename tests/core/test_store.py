"""The SQLite store: migrations, transactions, threads, kill -9, locked and corrupt files."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tunesmith.store import (
    Store,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
)

NOTES = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "ALTER TABLE notes ADD COLUMN tag TEXT; CREATE INDEX notes_tag ON notes(tag);",
]


def test_open_sets_wal_busy_timeout_and_foreign_keys(tmp_path):
    with Store.open(tmp_path / "s.sqlite", timeout=1.5) as db:
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        assert db.query("PRAGMA foreign_keys")[0][0] == 1
        assert db.query("PRAGMA busy_timeout")[0][0] == 1500


def test_migrations_apply_once_and_only_the_new_ones_later(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store.open(path, namespace="notes", migrations=NOTES[:1]) as db:
        db.execute("INSERT INTO notes(body) VALUES (?)", ("first",))
        assert db.schema_version("notes") == 1
    with Store.open(path, namespace="notes", migrations=NOTES) as db:
        assert db.schema_version("notes") == 2
        db.execute("INSERT INTO notes(body, tag) VALUES (?, ?)", ("second", "x"))
        assert [r["body"] for r in db.query("SELECT body FROM notes ORDER BY id")] == [
            "first",
            "second",
        ]
    # Opening again applies nothing (an ALTER run twice would fail).
    with Store.open(path, namespace="notes", migrations=NOTES) as db:
        assert db.schema_version("notes") == 2


def test_namespaces_in_one_file_have_their_own_versions(tmp_path):
    path = tmp_path / "s.sqlite"
    Store.open(path, namespace="notes", migrations=NOTES).close()
    with Store.open(path, namespace="other", migrations=["CREATE TABLE t (x)"]) as db:
        assert db.schema_version("notes") == 2
        assert db.schema_version("other") == 1


def test_a_failing_migration_is_rolled_back_and_the_version_stays(tmp_path):
    path = tmp_path / "s.sqlite"
    bad = [NOTES[0], "CREATE TABLE extra (x); INSERT INTO missing VALUES (1);"]
    with pytest.raises(StoreError, match=r"migration 2 of namespace 'notes' failed.*missing"):
        Store.open(path, namespace="notes", migrations=bad)
    with Store.open(path, namespace="notes", migrations=NOTES[:1]) as db:
        assert db.schema_version("notes") == 1
        assert not db.query("SELECT name FROM sqlite_master WHERE name = 'extra'")


def test_a_commit_after_a_comment_is_refused_and_nothing_of_the_migration_half_applies(tmp_path):
    path = tmp_path / "s.sqlite"
    # Its COMMIT used to end the migration's transaction midway: the rest ran outside it and
    # open() failed with SQLite's bare "cannot commit - no transaction is active".
    dumped = "CREATE TABLE a (x);\n-- done with a\nCOMMIT;\nCREATE TABLE b (y);"
    with pytest.raises(StoreError) as refused:
        Store.open(path, namespace="dump", migrations=[dumped])
    assert str(refused.value).startswith(
        f"{path}: migration 1 of namespace 'dump' failed and was rolled back: COMMIT is not allowed"
    )
    with Store.open(path) as db:
        assert db.schema_version("dump") == 0
        assert not db.query("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')")
        with pytest.raises(StoreError, match="ROLLBACK is not allowed"), db.transaction() as tx:
            tx.execute("CREATE TABLE c (x)")
            tx.execute("/* undo */ ROLLBACK")
        assert not db.query("SELECT name FROM sqlite_master WHERE name = 'c'")


def test_a_migration_may_be_a_function_of_the_transaction(tmp_path):
    def seed(tx):
        tx.executemany("INSERT INTO notes(body) VALUES (?)", [("a",), ("b",)])

    with Store.open(tmp_path / "s.sqlite", namespace="n", migrations=[NOTES[0], seed]) as db:
        assert db.query("SELECT count(*) FROM notes")[0][0] == 2


def test_a_database_newer_than_the_code_is_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    Store.open(path, namespace="notes", migrations=NOTES).close()
    with pytest.raises(StoreVersionError, match=r"s\.sqlite.*version 2, newer .*\(1\)"):
        Store.open(path, namespace="notes", migrations=NOTES[:1])


def test_a_transaction_commits_all_or_nothing(tmp_path):
    with Store.open(tmp_path / "s.sqlite", migrations=NOTES[:1]) as db:
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.execute("INSERT INTO notes(body) VALUES ('lost')")
            raise RuntimeError("mid-batch")
        with db.transaction() as tx:
            tx.executemany("INSERT INTO notes(body) VALUES (?)", [("a",), ("b",)])
            assert tx.query("SELECT count(*) FROM notes")[0][0] == 2
        assert [r[0] for r in db.query("SELECT body FROM notes ORDER BY id")] == ["a", "b"]


def test_a_nested_transaction_is_a_savepoint(tmp_path):
    with Store.open(tmp_path / "s.sqlite", migrations=NOTES[:1]) as db:
        with db.transaction() as outer:
            outer.execute("INSERT INTO notes(body) VALUES ('kept')")
            with pytest.raises(ValueError), db.transaction() as inner:
                inner.execute("INSERT INTO notes(body) VALUES ('undone')")
                raise ValueError
            db.execute("INSERT INTO notes(body) VALUES ('also kept')")
        assert [r[0] for r in db.query("SELECT body FROM notes ORDER BY id")] == [
            "kept",
            "also kept",
        ]


def test_execute_returns_rowcount_and_last_row_id(tmp_path):
    with Store.open(tmp_path / "s.sqlite", migrations=NOTES[:1]) as db:
        first = db.execute("INSERT INTO notes(body) VALUES ('a')")
        second = db.execute("INSERT INTO notes(body) VALUES ('b')")
        assert (first.rowcount, second.lastrowid) == (1, first.lastrowid + 1)
        assert db.execute("DELETE FROM notes").rowcount == 2


def test_foreign_keys_are_enforced(tmp_path):
    schema = [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (pid INTEGER NOT NULL REFERENCES parent(id))"
    ]
    with (
        Store.open(tmp_path / "s.sqlite", migrations=schema) as db,
        pytest.raises(sqlite3.IntegrityError),
    ):
        db.execute("INSERT INTO child VALUES (42)")


def test_threads_share_one_store_without_losing_writes(tmp_path):
    with Store.open(tmp_path / "s.sqlite", migrations=NOTES[:1]) as db:

        def work(n: int) -> None:
            for i in range(25):
                with db.transaction() as tx:
                    # Read-modify-write: only correct if transactions do not interleave.
                    count = tx.query("SELECT count(*) FROM notes")[0][0]
                    tx.execute("INSERT INTO notes(body) VALUES (?)", (f"{n}-{i}-{count}",))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bodies = [r[0] for r in db.query("SELECT body FROM notes ORDER BY id")]
    assert len(bodies) == 150
    assert [int(b.rsplit("-", 1)[1]) for b in bodies] == list(range(150))


def test_a_database_locked_by_another_process_is_one_error_naming_the_file(tmp_path):
    path = tmp_path / "busy.sqlite"
    Store.open(path, migrations=NOTES[:1]).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with (
            pytest.raises(StoreLockedError, match=r"busy\.sqlite: the database is locked"),
            Store.open(path, migrations=NOTES[:1], timeout=0.2) as db,
        ):
            db.execute("INSERT INTO notes(body) VALUES ('x')")
        assert time.monotonic() - started < 3
        # Reads still work while another process writes (WAL).
        with Store(path, timeout=0.2) as reader:
            assert reader.query("SELECT count(*) FROM notes")[0][0] == 0
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_file_that_is_not_a_database_is_one_error_naming_it(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(StoreCorruptError, match=r"notes\.sqlite: not a usable SQLite database"):
        Store.open(path, migrations=NOTES)


KILL_SCHEMA = ["CREATE TABLE rows (batch INTEGER NOT NULL, i INTEGER NOT NULL, pad TEXT)"]
WRITER = textwrap.dedent(
    f"""
    import sys
    from tunesmith.store import Store

    db = Store.open(sys.argv[1], namespace="k", migrations={KILL_SCHEMA!r})
    batch = 0
    while True:
        with db.transaction() as tx:
            tx.executemany(
                "INSERT INTO rows VALUES (?, ?, ?)",
                [(batch, i, "x" * 200) for i in range(50)],
            )
        print(batch, flush=True)
        batch += 1
    """
)


def test_nothing_committed_is_lost_when_a_writer_is_killed(tmp_path):
    path = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reported: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(reported) < 40 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reported += [int(line) for line in rest.split()]
    assert len(reported) >= 40, err
    assert proc.returncode == -signal.SIGKILL
    with Store.open(path, namespace="k", migrations=KILL_SCHEMA) as db:
        assert db.query("PRAGMA integrity_check")[0][0] == "ok"
        counts = {r[0]: r[1] for r in db.query("SELECT batch, count(*) FROM rows GROUP BY batch")}
    assert all(counts.get(batch) == 50 for batch in reported)
    # A batch is whole or absent: the one in flight at the kill is never half there.
    assert set(counts.values()) == {50}


@pytest.mark.parametrize("where", ["/dev/null", "folder"])
def test_a_path_that_is_no_regular_file_is_one_error_naming_it(tmp_path, where):
    from tunesmith.store import Store, StoreError

    path = tmp_path if where == "folder" else Path(where)
    with pytest.raises(StoreError, match=f"^{re.escape(str(path))}: (a folder|not a regular file)"):
        Store.open(path)
