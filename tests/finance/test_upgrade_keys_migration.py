"""Upgrading a finance database to topic/ticker rows that carry their document's time, negative
flag and score (store migration 6), from the release before it (schema version 5).

The old layout is written by hand here (the release's own SQL), so the test needs no old code:
an old `finance watch` left running while today's code migrates the file under it still writes
``INSERT OR IGNORE INTO finance_keys (doc_id, kind, key)``, whose missing time SQLite's
``OR IGNORE`` dropped without a word: its documents were stored with no topic or ticker."""

from __future__ import annotations

from tunesmith_finance import storage
from tunesmith_finance.trends import trends

#: How the release before migration 6 stored a document and its keys (storage.insert_documents).
OLD_DOCUMENT = (
    "INSERT OR IGNORE INTO finance_documents (id, ts, time, source, text, text_hash, chars, "
    "truncated, label, score, p_negative, p_neutral, p_positive, model, origin, line, "
    "ingested_at) VALUES (?, ?, 't', NULL, ?, 'h', 1, 0, ?, ?, 0.3, 0.3, 0.4, 'm', NULL, NULL, "
    "'now')"
)
OLD_KEYS = "INSERT OR IGNORE INTO finance_keys (doc_id, kind, key) VALUES (?, ?, ?)"


def _old_store(path):
    """A database at the release's schema (version 5), left open as its running watcher keeps it."""
    return storage.Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:5])


def _old_insert(old, doc_id, ts, label, score, topics=(), tickers=()):
    with old.transaction() as tx:
        tx.execute(OLD_DOCUMENT, (doc_id, ts, doc_id, label, score))
        keys = [(doc_id, "topic", t) for t in topics] + [(doc_id, "ticker", t) for t in tickers]
        tx.executemany(OLD_KEYS, keys)


def test_an_old_watcher_still_running_after_the_migration_keeps_its_documents_topics(tmp_path):
    path = tmp_path / "finance.sqlite"
    old = _old_store(path)
    _old_insert(old, "a", 3600.0, "negative", -0.6, topics=["banking"], tickers=["HLXB"])

    today = storage.open_store(path)  # today's code migrates the file the watcher holds
    assert today.schema_version(storage.NAMESPACE) == len(storage.MIGRATIONS)

    # The old watcher's next batch, with its own SQL, on the migrated table.
    _old_insert(old, "b", 7200.0, "negative", -0.4, topics=["banking"], tickers=["HLXB"])
    _old_insert(old, "c", 7300.0, "positive", 0.5, topics=["banking", "tech"])
    _old_insert(old, "c", 7300.0, "positive", 0.5, topics=["banking", "tech"])  # a rerun
    old.close()

    rows = today.query(
        "SELECT kind, key, ts, doc_id, negative, score FROM finance_keys ORDER BY doc_id, kind, key"
    )
    assert [tuple(r) for r in rows] == [
        ("ticker", "HLXB", 3600.0, "a", 1, -0.6),
        ("topic", "banking", 3600.0, "a", 1, -0.6),
        ("ticker", "HLXB", 7200.0, "b", 1, -0.4),
        ("topic", "banking", 7200.0, "b", 1, -0.4),
        ("topic", "banking", 7300.0, "c", 0, 0.5),
        ("topic", "tech", 7300.0, "c", 0, 0.5),
    ]
    (bucket,) = trends(today, by="topic", bucket="1d", key="banking")
    assert (bucket.count, bucket.negatives) == (3, 2)
    # Today's own writes and the cascade from a pruned document are as before.
    today.execute("DELETE FROM finance_documents WHERE id = 'b'")
    assert today.query("SELECT COUNT(*) AS n FROM finance_keys WHERE doc_id = 'b'")[0]["n"] == 0
    today.close()


def test_a_database_migrated_to_6_before_this_fix_gets_it_once(tmp_path):
    path = tmp_path / "finance.sqlite"
    old = _old_store(path)
    six = storage.Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:6])
    six.close()
    for _ in range(2):  # a second open has nothing left to run
        today = storage.open_store(path)
        assert today.schema_version(storage.NAMESPACE) == len(storage.MIGRATIONS)
        today.close()
    _old_insert(old, "a", 60.0, "neutral", 0.1, tickers=["ORCN"])
    old.close()
    db = storage.open_store(path)
    rows = db.query("SELECT kind, key, ts, negative, score FROM finance_keys")
    assert [tuple(r) for r in rows] == [("ticker", "ORCN", 60.0, 0, 0.1)]
    db.close()
