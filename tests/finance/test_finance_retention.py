"""Retention (`finance prune`) and the storage layout that keeps a long stream fast."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from finance_fakes import KeywordModel, write_jsonl

from tunesmith_finance import retention, storage
from tunesmith_finance.alerts import list_alerts, store_alert
from tunesmith_finance.ingest import Ingester, Issue
from tunesmith_finance.trends import trends

DAY = 86400.0
#: The documents' clock: "now" of these tests is day 100.
NOW = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def fill(db, days: int = 100, per_day: int = 10) -> None:
    """``per_day`` documents a day over ``days`` days up to NOW, stored as ingest stores them:
    every third negative, topic banking, ticker HLXB on the even ones, an issue each tenth."""
    docs, issues = [], []
    for day in range(days):
        for j in range(per_day):
            i = day * per_day + j
            ts = NOW - (days - day) * DAY + j * 60
            label = "negative" if i % 3 == 0 else "neutral"
            docs.append(
                storage.StoredDocument(
                    id=f"d{i}", ts=ts, time=stamp(ts), source="t", text=f"note {i}",
                    text_hash=f"h{i}", chars=6, truncated=False, label=label,
                    score=-0.7 if label == "negative" else 0.0, p_negative=0.8,
                    p_neutral=0.1, p_positive=0.1, topics=["banking"],
                    tickers=["HLXB"] if i % 2 == 0 else [], origin="feed.jsonl", line=i,
                )
            )  # fmt: skip
            if i % 10 == 0:
                issues.append(Issue("feed.jsonl", i, "truncated", "cut", f"d{i}"))
    with db.transaction() as tx:
        storage.insert_documents(tx, docs)
        storage.record_issues(tx, issues)


def an_alert(db, doc_id: str, ts: float) -> None:
    """A stored alert whose window and example are old documents."""
    alert = {
        "id": "a-old", "kind": "topic", "key": "banking", "window_start": ts,
        "window_end": ts + 3 * 3600, "n": 9, "negatives": 7, "share": 0.78, "baseline": 0.3,
        "z": 4.0, "p_value": 1e-5, "mean_score": -0.5, "words": [{"word": "plunge"}],
        "examples": [{"id": doc_id, "time": stamp(ts), "source": "t", "text": "old note",
                      "score": -0.7}],
        "detector": "surge", "tz": "UTC", "explained": 7, "settings": {"bucket": 3600.0},
    }  # fmt: skip
    store_alert(db, alert, None)


def test_prune_deletes_old_documents_keys_and_issues_and_keeps_alerts(tmp_path):
    db = storage.open_store(tmp_path / "f.sqlite")
    fill(db)
    an_alert(db, "d0", NOW - 100 * DAY)
    cutoff = NOW - 90 * DAY
    plan = retention.plan_prune(db, cutoff)
    assert (plan.documents, plan.kept_documents, plan.keys) == (100, 900, 150)
    assert plan.alerts_kept == 1
    report = retention.prune(db, cutoff, batch=7, pause=0)
    assert report.documents == 100 and report.batches == 15  # 7 a transaction
    assert db.query("SELECT MIN(ts) AS t FROM finance_documents")[0]["t"] >= cutoff
    assert db.query("SELECT COUNT(*) AS n FROM finance_keys WHERE ts < ?", (cutoff,))[0]["n"] == 0
    orphans = "SELECT COUNT(*) AS n FROM finance_keys k LEFT JOIN finance_documents d ON d.id = k.doc_id WHERE d.id IS NULL"
    assert db.query(orphans)[0]["n"] == 0
    assert (
        db.query("SELECT COUNT(*) AS n FROM finance_issues WHERE doc_id IN ('d0', 'd90')")[0]["n"]
        == 0
    )
    assert storage.count_documents(db) == 900
    # The alert shows itself as it was found: its example is its own copy.
    (alert,) = list_alerts(db)
    assert alert["examples"][0]["text"] == "old note" and alert["n"] == 9
    # Trends over what is kept are what they were for those days.
    assert sum(r.count for r in trends(db, by="topic", bucket="1d")) == 900
    db.close()


def test_dry_run_changes_nothing_and_a_short_older_than_is_refused(cli, tmp_path):
    path = tmp_path / "f.sqlite"
    db = storage.open_store(path)
    fill(db, days=3)
    db.close()
    before = path.read_bytes()
    result = cli("finance", "prune", "--db", str(path), "--before", stamp(NOW), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would delete 30 document(s)" in result.output
    assert "would keep 0 document(s) and every alert" in result.output
    assert path.read_bytes() == before
    result = cli("finance", "prune", "--db", str(path), "--older-than", "90m")
    assert result.exit_code == 2 and "keep less than a day" in result.output
    result = cli("finance", "prune", "--db", str(path))
    assert result.exit_code == 2 and "--older-than" in result.output
    result = cli("finance", "prune", "--db", str(path), "--before", "2999-01-01")
    assert result.exit_code == 2 and "in the future" in result.output
    assert path.read_bytes() == before


def test_prune_json_reports_and_vacuum_gives_the_space_back(cli, tmp_path):
    from tunesmith.store import Store

    path = tmp_path / "f.sqlite"
    # As every database was made before new ones were incremental: the first vacuum is full.
    db = Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS)
    fill(db, days=100, per_day=40)
    db.close()
    size = path.stat().st_size
    first = cli("finance", "prune", "--db", str(path), "--before", stamp(NOW - 10 * DAY),
                "--vacuum", "--json")  # fmt: skip
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["documents"] == 3600 and report["vacuum"] == "full"
    assert path.stat().st_size < size / 3
    # The full vacuum switched incremental mode on: the next prune's vacuum is incremental.
    second = cli("finance", "prune", "--db", str(path), "--before", stamp(NOW - 5 * DAY),
                 "--vacuum", "--json")  # fmt: skip
    assert json.loads(second.output)["vacuum"] == "incremental"
    assert json.loads(second.output)["free_bytes"] == 0


def test_a_new_database_gives_pruned_space_back_without_a_full_vacuum(cli, tmp_path):
    # A new database's first --vacuum was one full VACUUM, holding a running watch's lock for
    # the whole file.
    path = tmp_path / "f.sqlite"
    db = storage.open_store(path)
    fill(db, days=100, per_day=40)
    db.close()
    size = path.stat().st_size
    done = cli("finance", "prune", "--db", str(path), "--before", stamp(NOW - 10 * DAY),
               "--vacuum", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["vacuum"] == "incremental"
    assert path.stat().st_size < size / 3


def test_a_pruned_document_read_again_is_not_stored_again(tmp_path):
    db = storage.open_store(tmp_path / "f.sqlite")
    rows = [
        {"id": "old", "time": stamp(NOW - 100 * DAY), "text": "Helix Bank shares plunge"},
        {"id": "new", "time": stamp(NOW - 1 * DAY), "text": "Orcana beats estimates"},
    ]
    feed = write_jsonl(tmp_path / "feed.jsonl", rows)
    ingester = Ingester(db, KeywordModel(), warn=lambda _m: None)
    assert ingester.ingest_file(feed).added == 2
    retention.prune(db, NOW - 90 * DAY, pause=0)
    assert storage.retention_cutoff(db) == NOW - 90 * DAY
    # Read again from its start (as after its progress record went, or through stdin).
    again = write_jsonl(tmp_path / "copy.jsonl", rows)
    model = KeywordModel()
    report = Ingester(db, model, warn=lambda _m: None).ingest_file(again)
    assert (report.added, report.duplicates, report.too_old) == (0, 1, 1)
    assert model.calls == 0, "the old document was scored again"
    assert "older than the prune cut-off" in report.summary()
    assert [r["id"] for r in db.query("SELECT id FROM finance_documents")] == ["new"]
    db.close()


def test_progress_of_a_file_still_on_disk_is_kept_and_of_a_gone_one_deleted(tmp_path):
    db = storage.open_store(tmp_path / "f.sqlite")
    kept = tmp_path / "kept.jsonl"
    kept.write_text("")
    with db.transaction() as tx:
        for path in (kept, tmp_path / "rotated-away.jsonl"):
            storage.set_progress(tx, str(path), 10, 1, None, "x")
    db.execute("UPDATE finance_progress SET updated_at = ?", (stamp(NOW - 100 * DAY),))
    report = retention.prune(db, NOW - 90 * DAY, pause=0)
    assert report.progress == 1
    assert [r["path"] for r in db.query("SELECT path FROM finance_progress")] == [str(kept)]
    db.close()


def test_key_trends_read_no_document_row(tmp_path):
    """Per topic or ticker, trends (and the detector) read finance_keys alone: at a million
    documents, looking each one up by id took most of `finance trends`' 6 seconds."""
    db = storage.open_store(tmp_path / "f.sqlite")
    fill(db, days=2)
    seen: list[str] = []
    real = db.query

    def spy(sql, params=()):
        seen.append(sql)
        return real(sql, params)

    db.query = spy  # type: ignore[method-assign]
    rows = trends(db, by="ticker", bucket="1d", key="HLXB", since=NOW - 2 * DAY)
    assert [(r.count, r.negatives) for r in rows] == [(5, 2), (5, 2)]
    (bucket_sql,) = [s for s in seen if "GROUP BY" in s]
    assert "finance_documents" not in bucket_sql
    db.close()


def test_migration_fills_the_keys_of_a_database_from_before(tmp_path):
    path = tmp_path / "old.sqlite"
    old = storage.Store.open(path, namespace=storage.NAMESPACE, migrations=storage.MIGRATIONS[:5])
    with old.transaction() as tx:
        tx.execute(
            "INSERT INTO finance_documents (id, ts, time, text, text_hash, chars, label, score, "
            "p_negative, p_neutral, p_positive, ingested_at) VALUES "
            "('x', 100.0, 't', 'a', 'h', 1, 'negative', -0.6, 0.7, 0.2, 0.1, 'now')"
        )
        tx.execute("INSERT INTO finance_keys (doc_id, kind, key) VALUES ('x', 'topic', 'banking')")
    old.close()
    db = storage.open_store(path)
    (row,) = db.query("SELECT kind, key, ts, doc_id, negative, score FROM finance_keys")
    assert tuple(row) == ("topic", "banking", 100.0, "x", 1, -0.6)
    db.execute("DELETE FROM finance_documents WHERE id = 'x'")
    assert db.query("SELECT COUNT(*) AS n FROM finance_keys")[0]["n"] == 0  # the cascade holds
    db.close()


KILL_SCRIPT = """
import sys
sys.path.insert(0, {helpers!r})
from tunesmith_finance import retention, storage
db = storage.open_store({db!r})
retention.prune(db, {cutoff!r}, batch=5, pause=0.05)
"""


def test_kill_9_mid_prune_loses_nothing_kept_and_a_rerun_finishes(tmp_path):
    path = tmp_path / "f.sqlite"
    db = storage.open_store(path)
    fill(db, days=100, per_day=10)
    an_alert(db, "d0", NOW - 100 * DAY)
    kept_before = db.query(
        "SELECT * FROM finance_documents WHERE ts >= ? ORDER BY id", (NOW - 50 * DAY,)
    )
    keys_before = db.query(
        "SELECT * FROM finance_keys WHERE ts >= ? ORDER BY doc_id, kind", (NOW - 50 * DAY,)
    )
    db.close()
    cutoff = NOW - 50 * DAY
    script = KILL_SCRIPT.format(helpers=str(Path(__file__).parent), db=str(path), cutoff=cutoff)
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            con = sqlite3.connect(path, timeout=5)
            left = con.execute("SELECT COUNT(*) FROM finance_documents WHERE ts < ?", (cutoff,))
            old = left.fetchone()[0]
            con.close()
            if old <= 300:
                break
            assert child.poll() is None, "the prune finished before it could be killed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    db = storage.open_store(path)
    left = db.query("SELECT COUNT(*) AS n FROM finance_documents WHERE ts < ?", (cutoff,))[0]["n"]
    assert 0 < left < 500, "killed mid-prune"
    assert db.query("PRAGMA integrity_check")[0][0] == "ok"
    kept = "SELECT * FROM finance_documents WHERE ts >= ? ORDER BY id"
    assert [tuple(r) for r in db.query(kept, (cutoff,))] == [tuple(r) for r in kept_before]
    keys = "SELECT * FROM finance_keys WHERE ts >= ? ORDER BY doc_id, kind"
    assert [tuple(r) for r in db.query(keys, (cutoff,))] == [tuple(r) for r in keys_before]
    assert len(list_alerts(db)) == 1
    retention.prune(db, cutoff, pause=0)
    assert storage.count_documents(db) == 500
    db.close()
