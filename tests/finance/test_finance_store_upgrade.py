"""Upgrading a finance database of the release before store migration 6 (schema version 5): the
user is told that it runs and for about how long, a copy of the file at schema 5 is kept beside
it (the way back), and the rewritten topic and ticker rows are those of the SQL it replaced,
read in chunks of documents."""

from __future__ import annotations

from tunesmith.store import Store
from tunesmith_finance import storage
from tunesmith_finance.trends import trends

#: How the release before migration 6 stored a document and its keys.
OLD_DOCUMENT = (
    "INSERT INTO finance_documents (id, ts, time, source, text, text_hash, chars, truncated, "
    "label, score, p_negative, p_neutral, p_positive, model, origin, line, ingested_at) "
    "VALUES (?, ?, 't', NULL, ?, 'h', 1, 0, ?, ?, 0.3, 0.3, 0.4, 'm', NULL, NULL, 'now')"
)
OLD_KEYS = "INSERT INTO finance_keys (doc_id, kind, key) VALUES (?, ?, ?)"


def _schema_5(path, documents):
    """A database as the release before wrote it: ``(id, ts, label, score, topics, tickers)``."""
    old = Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:5])
    with old, old.transaction() as tx:
        for doc_id, ts, label, score, topics, tickers in documents:
            tx.execute(OLD_DOCUMENT, (doc_id, ts, doc_id, label, score))
            keys = [(doc_id, "topic", t) for t in topics]
            keys += [(doc_id, "ticker", t) for t in tickers]
            tx.executemany(OLD_KEYS, keys)


DOCUMENTS = [
    ("a", 3600.0, "negative", -0.6, ["banking"], ["HLXB"]),
    ("b", 7200.0, "positive", 0.5, ["banking", "tech"], []),
    ("gone", 7300.0, "negative", -0.2, ["tech"], []),  # pruned before the upgrade: a gap
    ("c", 9000.0, "neutral", 0.1, [], ["ORCN"]),
    ("d", 9100.0, "negative", -0.9, ["banking"], ["HLXB", "ORCN"]),
    ("e", 9200.0, "neutral", 0.0, [], []),
]


def test_upgrading_from_schema_5_says_so_keeps_a_copy_and_rewrites_every_key_row(
    tmp_path, capsys, monkeypatch
):
    path = tmp_path / "news.sqlite"
    _schema_5(path, DOCUMENTS)
    with Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:5]) as old:
        old.execute("DELETE FROM finance_documents WHERE id = 'gone'")  # its keys cascade
    capsys.readouterr()
    monkeypatch.setattr(storage, "REWRITE_CHUNK", 2)  # several chunks, one across the gap

    db = storage.open_store(path)
    err = capsys.readouterr().err
    assert err.startswith(
        f"upgrading {path} from schema 5 to {len(storage.MIGRATIONS)} (finance): a few seconds "
        "for 5 documents; first a copy of it as it is: news.finance-schema5.sqlite\n"
    )
    assert "put news.finance-schema5.sqlite in its place" in err

    rows = db.query(
        "SELECT kind, key, ts, doc_id, negative, score FROM finance_keys ORDER BY doc_id, kind, key"
    )
    assert [tuple(r) for r in rows] == [
        ("ticker", "HLXB", 3600.0, "a", 1, -0.6),
        ("topic", "banking", 3600.0, "a", 1, -0.6),
        ("topic", "banking", 7200.0, "b", 0, 0.5),
        ("topic", "tech", 7200.0, "b", 0, 0.5),
        ("ticker", "ORCN", 9000.0, "c", 0, 0.1),
        ("ticker", "HLXB", 9100.0, "d", 1, -0.9),
        ("ticker", "ORCN", 9100.0, "d", 1, -0.9),
        ("topic", "banking", 9100.0, "d", 1, -0.9),
    ]
    (bucket,) = trends(db, by="topic", bucket="1d", key="banking")
    assert (bucket.count, bucket.negatives) == (3, 2)
    # Foreign keys are on again: a pruned document takes its key rows with it
    db.execute("DELETE FROM finance_documents WHERE id = 'd'")
    assert db.query("SELECT COUNT(*) FROM finance_keys WHERE doc_id = 'd'")[0][0] == 0
    db.close()

    # The copy is the file the release before knows, documents and keys as they were
    copy = tmp_path / "news.finance-schema5.sqlite"
    with Store.open(copy, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:5]) as old:
        assert old.query("SELECT COUNT(*) FROM finance_documents")[0][0] == 5
        assert old.query("SELECT COUNT(*) FROM finance_keys")[0][0] == 8


def test_a_new_finance_database_is_created_without_a_word_or_a_copy(tmp_path, capsys):
    storage.open_store(tmp_path / "news.sqlite").close()
    assert capsys.readouterr().err == ""
    assert [p.name for p in tmp_path.iterdir() if "schema" in p.name] == []
