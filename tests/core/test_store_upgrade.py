"""Upgrades that rewrite stored rows (store_upgrade.Rewrite): said before they run, a copy of the
file kept first (the way back to the release before), refused in one line when the disk has no
room for them, run with foreign key checks off as SQLite's table-rebuild recipe wants."""

from __future__ import annotations

import sqlite3

import pytest

from tunesmith import store_upgrade
from tunesmith.store import Store, StoreError, StoreRoomError
from tunesmith.store_upgrade import Rewrite, about, copy_path

#: Version 1: posts and their replies, deleted with their post.
V1 = [
    "CREATE TABLE posts (id TEXT PRIMARY KEY, body TEXT NOT NULL);"
    "CREATE TABLE replies (post_id TEXT NOT NULL REFERENCES posts(id) ON DELETE CASCADE, "
    "body TEXT NOT NULL);"
]


def _rebuild_posts(tx):
    """Version 2 rewrites the parent table (a new column filled from the old rows)."""
    tx.execute("CREATE TABLE posts_v2 (id TEXT PRIMARY KEY, body TEXT NOT NULL, chars INTEGER)")
    tx.execute("INSERT INTO posts_v2 SELECT id, body, length(body) FROM posts")
    tx.progress(0.5)
    tx.execute("DROP TABLE posts")
    tx.execute("ALTER TABLE posts_v2 RENAME TO posts")
    tx.progress(1.0)


V2 = [*V1, Rewrite(_rebuild_posts, count="SELECT COUNT(*) FROM posts", noun="posts")]


def _version_1(path, posts=3):
    with Store.open(path, namespace="blog", migrations=V1) as db, db.transaction() as tx:
        for i in range(posts):
            tx.execute("INSERT INTO posts VALUES (?, ?)", (f"p{i}", "x" * (i + 1)))
            tx.execute("INSERT INTO replies VALUES (?, 'ok')", (f"p{i}",))


def test_a_rewriting_upgrade_says_so_and_keeps_a_copy_an_older_release_opens(tmp_path, capsys):
    path = tmp_path / "blog.sqlite"
    _version_1(path)
    capsys.readouterr()

    with Store.open(path, namespace="blog", migrations=V2) as db:
        assert db.schema_version("blog") == 2
        assert [tuple(r) for r in db.query("SELECT id, chars FROM posts ORDER BY id")] == [
            ("p0", 1),
            ("p1", 2),
            ("p2", 3),
        ]
    err = capsys.readouterr().err.splitlines()
    copy = tmp_path / "blog.blog-schema1.sqlite"
    assert err[0] == (
        f"upgrading {path} from schema 1 to 2 (blog): a few seconds for 3 posts; "
        f"first a copy of it as it is: {copy.name}"
    )
    assert err[1].startswith(f"upgraded {path} to schema 2 in ")
    assert f"put {copy.name} in its place" in err[1]
    # The copy is the file as it was: the release before opens it as its own
    assert copy == copy_path(path, "blog", 1)
    with Store.open(copy, namespace="blog", migrations=V1) as old:
        assert old.schema_version("blog") == 1
        assert old.query("SELECT COUNT(*) FROM posts")[0][0] == 3
        assert "chars" not in {r["name"] for r in old.query("PRAGMA table_info(posts)")}


def test_a_new_file_and_a_file_up_to_date_say_nothing_and_keep_no_copy(tmp_path, capsys):
    path = tmp_path / "blog.sqlite"
    for _ in range(2):
        Store.open(path, namespace="blog", migrations=V2).close()
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir() if "schema" in p.name) == []


def test_an_upgrade_the_disk_has_no_room_for_is_refused_with_nothing_changed(
    tmp_path, monkeypatch, capsys
):
    path = tmp_path / "blog.sqlite"
    _version_1(path)
    size = store_upgrade.file_size(path)
    monkeypatch.setattr(store_upgrade, "free_space", lambda _p: size)  # room for one copy only

    with pytest.raises(StoreRoomError) as caught:
        Store.open(path, namespace="blog", migrations=V2)
    message = str(caught.value)
    assert message.startswith(f"{path}: not upgraded (nothing changed): upgrading namespace ")
    assert "from schema 1 to 2 needs about" in message
    assert "TUNESMITH_UPGRADE_COPY=0" in message
    assert caught.value.exit_code == 1
    assert "\n" not in message
    with Store.open(path, namespace="blog", migrations=V1) as db:
        assert db.schema_version("blog") == 1
    assert not copy_path(path, "blog", 1).exists()

    # Without the copy it needs room for the rewrite alone, and keeps none
    monkeypatch.setenv("TUNESMITH_UPGRADE_COPY", "0")
    capsys.readouterr()
    Store.open(path, namespace="blog", migrations=V2).close()
    err = capsys.readouterr().err
    assert "a copy" not in err and "go back" not in err
    assert not copy_path(path, "blog", 1).exists()


def test_a_failing_rewrite_is_rolled_back_and_leaves_no_copy(tmp_path):
    path = tmp_path / "blog.sqlite"
    _version_1(path)

    def broken(tx):
        _rebuild_posts(tx)
        raise ValueError("bad data")

    with pytest.raises(StoreError, match="migration 2 of namespace 'blog' failed and was rolled"):
        Store.open(path, namespace="blog", migrations=[*V1, Rewrite(broken, count="SELECT 1")])
    assert not copy_path(path, "blog", 1).exists()
    with Store.open(path, namespace="blog", migrations=V1) as db:
        assert db.schema_version("blog") == 1
        assert db.query("SELECT COUNT(*) FROM posts")[0][0] == 3


def test_a_rewrite_runs_with_foreign_keys_off_so_dropping_a_parent_keeps_its_children(tmp_path):
    path = tmp_path / "blog.sqlite"
    _version_1(path)
    with Store.open(path, namespace="blog", migrations=V2) as db:
        # With them on, DROP TABLE posts deleted every reply (ON DELETE CASCADE)
        assert db.query("SELECT COUNT(*) FROM replies")[0][0] == 3
        assert db.query("PRAGMA foreign_keys")[0][0] == 1  # on again afterwards
        db.execute("DELETE FROM posts WHERE id = 'p0'")
        assert db.query("SELECT COUNT(*) FROM replies")[0][0] == 2


def test_a_rewrite_that_leaves_a_reference_to_a_missing_row_is_rolled_back(tmp_path):
    path = tmp_path / "blog.sqlite"
    _version_1(path)

    def loses_a_post(tx):
        _rebuild_posts(tx)
        tx.execute("DELETE FROM posts WHERE id = 'p1'")  # its reply now names nothing

    with pytest.raises(StoreError, match="naming a missing posts row.*rolled back"):
        Store.open(
            path, namespace="blog", migrations=[*V1, Rewrite(loses_a_post, count="SELECT 1")]
        )
    assert not copy_path(path, "blog", 1).exists()
    with Store.open(path, namespace="blog", migrations=V1) as db:
        assert db.schema_version("blog") == 1
        assert db.query("SELECT COUNT(*) FROM posts")[0][0] == 3


def test_the_rewrite_moves_the_progress_bar_and_progress_is_a_no_op_elsewhere(
    tmp_path, monkeypatch
):
    path = tmp_path / "blog.sqlite"
    _version_1(path)
    seen = []

    class Bar:
        def __init__(self, show):
            pass

        def __call__(self, fraction):
            seen.append(fraction)

        def close(self):
            seen.append("closed")

    monkeypatch.setattr(store_upgrade, "RewriteBar", Bar)
    with Store.open(path, namespace="blog", migrations=V2) as db:
        assert seen == [0.5, 1.0, "closed"]
        with db.transaction() as tx:
            tx.progress(0.3)  # outside a rewrite: nothing to move
    assert seen == [0.5, 1.0, "closed"]


def test_waits_are_said_as_a_person_says_them():
    assert about(3) == "a few seconds"
    assert about(21) == "about 20 seconds"
    assert about(60) == "about a minute"
    assert about(200) == "about 3 minutes"


def test_a_migration_list_with_a_rewrite_of_something_else_is_refused(tmp_path):
    with pytest.raises(StoreError, match="migration 1 of namespace 'blog' is int"):
        Store.open(tmp_path / "b.sqlite", namespace="blog", migrations=[Rewrite(5, count="")])


def test_the_copy_is_a_sqlite_file_committed_as_a_whole(tmp_path):
    path = tmp_path / "blog.sqlite"
    _version_1(path, posts=50)
    target = tmp_path / "copy.sqlite"
    store_upgrade.keep_copy(path, target, show_bar=False)
    with sqlite3.connect(target) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 50
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
