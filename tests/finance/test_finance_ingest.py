from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from finance_fakes import KeywordModel, doc, write_csv, write_jsonl

from tunesmith.errors import DataError
from tunesmith.store import StoreLockedError
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.storage import count_documents, get_progress, open_store


def ingester(db, rules=None, **options):
    return Ingester(db, KeywordModel(), rules, warn=lambda _m: None, **options)


def issues(db, kind=None):
    rows = db.query("SELECT origin, line, kind, doc_id FROM finance_issues ORDER BY id")
    return [tuple(r) for r in rows if kind is None or r["kind"] == kind]


def test_the_same_file_twice_adds_nothing(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(10)])
    first = ingester(db).ingest_file(path)
    copy = write_jsonl(tmp_path / "copy.jsonl", [doc(i) for i in range(10)])
    second = ingester(db).ingest_file(copy)
    assert (first.added, second.added, second.duplicates) == (10, 0, 10)
    assert count_documents(db) == 10


def test_a_changed_text_under_a_known_id_keeps_the_first_version_and_warns(db, tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [doc(1, "Helix Bank beats estimates")])
    write_jsonl(tmp_path / "b.jsonl", [doc(1, "Helix Bank shares plunge")])
    ingester(db).ingest_file(tmp_path / "a.jsonl")
    warnings: list[str] = []
    report = Ingester(db, KeywordModel(), warn=warnings.append).ingest_file(tmp_path / "b.jsonl")
    assert report.changed == 1 and report.added == 0
    assert "d1" in warnings[0] and "first stored version is kept" in warnings[0]
    row = db.query("SELECT text, label FROM finance_documents WHERE id = 'd1'")[0]
    assert (row["text"], row["label"]) == ("Helix Bank beats estimates", "positive")
    assert issues(db, "changed_text") == [(str(tmp_path / "b.jsonl"), 1, "changed_text", "d1")]


def test_duplicate_ids_inside_one_batch_are_stored_once(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(1), doc(1), doc(1, "other text")])
    report = ingester(db).ingest_file(path)
    assert (report.added, report.duplicates, report.changed) == (1, 1, 1)


def test_bad_rows_are_skipped_and_reported_with_file_and_line(db, tmp_path, sample_rules):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            doc(1),
            "{not json",
            doc(2, time="yesterday"),
            doc(3, time=None),
            '["a", "list"]',
            doc(4, "x" * 50),
            doc(5, topic="crypto"),
            {"id": "6", "time": "2026-11-02T10:00:00Z", "text": ""},
        ],
    )
    report = ingester(db, sample_rules, max_chars=20).ingest_file(path)
    assert (report.read, report.added, report.skipped, report.truncated, report.unknown_topics) == (
        8,
        3,
        5,
        1,
        1,
    )
    skipped = [(line, detail) for _o, line, kind, detail in
               [(i.origin, i.line, i.kind, i.detail) for i in report.issues] if kind == "skipped"]  # fmt: skip
    assert [line for line, _ in skipped] == [2, 3, 4, 5, 8]
    assert "malformed JSON" in skipped[0][1] and "unparsable time" in skipped[1][1]
    assert "missing time" in skipped[2][1]
    assert str(report.issues[0]).startswith(f"{path}:2: skipped")
    assert len(issues(db, "skipped")) == 5
    assert db.query("SELECT text FROM finance_documents WHERE id = 'd4'")[0]["text"] == "x" * 20


def test_a_rules_regex_that_hangs_on_a_headline_stops_ingest_naming_file_and_line(
    db, tmp_path, monkeypatch
):
    from tunesmith_finance import rules

    monkeypatch.setattr(rules, "REGEX_SECONDS", 0.2, raising=False)
    hostile = rules.rules_from_dict({"topics": {"banking": {"regexes": ["(a|aa)+$"]}}})
    path = write_jsonl(tmp_path / "a.jsonl", [doc(1), doc(2, "a" * 36 + "!")])
    with pytest.raises(DataError, match=rf"^{path}:2: rules: topics.banking.regexes: "):
        ingester(db, hostile).ingest_file(path)
    assert count_documents(db) == 0  # the batch it was in is read again by the next run


def test_csv_with_quoted_multi_line_text_and_a_short_row(db, tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        ["id", "time", "source", "text", "tickers"],
        [
            ["c1", "2026-11-02T10:00:00+09:00", "s", "first line\nsecond line, with comma", "HLXB"],
            ["c2", "2026-11-02T11:00:00Z", "s", 'a "quoted" word', ""],
        ],
    )
    with path.open("a") as handle:
        handle.write("c3,2026-11-02T12:00:00Z\n")
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (2, 1)
    assert report.issues[0].line == 5 and "expected 5 fields, got 2" in report.issues[0].detail
    rows = {r["id"]: r for r in db.query("SELECT id, text, time FROM finance_documents")}
    assert rows["c1"]["text"] == "first line\nsecond line, with comma"
    assert rows["c1"]["time"] == "2026-11-02T01:00:00Z"
    assert db.query("SELECT key FROM finance_keys WHERE doc_id = 'c1'")[0]["key"] == "HLXB"


def test_appended_lines_are_read_from_the_recorded_offset(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(5)])
    ing = ingester(db, batch_size=2)
    ing.ingest_file(path)
    progress = get_progress(db, str(path.resolve()))
    assert (progress.offset, progress.line) == (path.stat().st_size, 5)
    with path.open("a") as handle:
        handle.write(json.dumps(doc(5)) + "\n")
    model = ing.model
    before = model.calls
    report = ing.ingest_file(path)
    assert (report.read, report.added, model.calls - before) == (1, 1, 1)


def test_follow_mode_waits_for_an_unfinished_last_line(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(1)])
    with path.open("a") as handle:
        handle.write('{"id": "d2", "time": "2026-11-02T10:00:00Z", "te')
    ing = ingester(db)
    assert ing.ingest_file(path, follow=True).added == 1
    with path.open("a") as handle:
        handle.write('xt": "finished later"}\n')
    report = ing.ingest_file(path, follow=True)
    assert (report.added, report.skipped) == (1, 0)


def test_a_shorter_file_is_read_again_from_the_start(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(5)])
    ing = ingester(db)
    ing.ingest_file(path)
    write_jsonl(path, [doc(9)])
    report = ing.ingest_file(path)
    assert report.added == 1 and count_documents(db) == 6


def test_a_locked_database_is_one_clear_error_and_the_rerun_resumes(tmp_path, monkeypatch):
    import tunesmith_finance.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "LOCK_RETRIES", 0)
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(6)])
    db = open_store(tmp_path / "f.sqlite", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "f.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError, match=r"locked.*stopped before .*a.jsonl:1"):
            ingester(db, batch_size=3).ingest_file(path)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert count_documents(db) == 0
    assert ingester(db, batch_size=3).ingest_file(path).added == 6
    db.close()


KILL_SCRIPT = """
import sys
sys.path.insert(0, {helpers!r})
from finance_fakes import KeywordModel
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.storage import open_store
db = open_store({db!r})
Ingester(db, KeywordModel(delay=0.05), batch_size=20, warn=lambda m: None).ingest_file({path!r})
"""


def test_kill_9_mid_file_then_restart_loses_and_duplicates_nothing(tmp_path):
    rows: list[object] = []
    for i in range(600):
        rows.append("{broken" if i % 50 == 7 else doc(i))
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    db_path = tmp_path / "f.sqlite"
    open_store(db_path).close()
    script = KILL_SCRIPT.format(helpers=str(Path(__file__).parent), db=str(db_path), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    key = str(path.resolve())
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            check = open_store(db_path)
            progress = get_progress(check, key)
            check.close()
            if progress and progress.line >= 100:
                break
            assert child.poll() is None, "the ingest finished before it could be killed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    db = open_store(db_path)
    stored_before = count_documents(db)
    assert 0 < stored_before < 588, "killed mid-file"
    report = Ingester(db, KeywordModel(), batch_size=20, warn=lambda _m: None).ingest_file(path)
    assert report.duplicates == 0, "rows of committed batches were not read again"
    assert count_documents(db) == 588  # 600 rows, 12 broken
    assert len(issues(db, "skipped")) == 12  # each broken line reported exactly once
    progress = get_progress(db, key)
    assert (progress.offset, progress.line) == (path.stat().st_size, 600)
    db.close()


def test_a_quote_inside_an_unquoted_csv_field_does_not_swallow_the_next_rows(db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        "id,time,text\n"
        'q1,2026-11-02T10:00:00Z,Orcana unveils a 27" screen\n'
        "q2,2026-11-02T11:00:00Z,Helix Bank falls\n"
        'q3,2026-11-02T12:00:00Z,"quoted, with ""inner"" quotes"\n'
    )
    report = ingester(db).ingest_file(path)
    assert (report.read, report.added, report.skipped) == (3, 3, 0)
    texts = {r["id"]: r["text"] for r in db.query("SELECT id, text FROM finance_documents")}
    assert texts == {
        "q1": 'Orcana unveils a 27" screen',
        "q2": "Helix Bank falls",
        "q3": 'quoted, with "inner" quotes',
    }


def test_a_csv_quote_left_open_at_the_end_is_a_skipped_row_not_a_document(db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        'id,time,text\nu1,2026-11-02T10:00:00Z,fine\nu2,2026-11-02T11:00:00Z,"never closed\n'
    )
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert report.issues[0].line == 3 and "never closed" in report.issues[0].detail
    assert count_documents(db) == 1


@pytest.mark.parametrize(
    ("content", "column"),
    [
        ("id,time,body\nr1,2026-11-02T10:00:00Z,Helix Bank falls\n", "'text'"),
        ("id,text\nr1,Helix Bank falls\n", "'time'"),
    ],
)
def test_a_csv_without_a_text_or_time_column_is_one_error_and_stores_nothing(
    db, tmp_path, content, column
):
    path = tmp_path / "a.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"a.csv:1, column {column}: no such column"):
        ingester(db).ingest_file(path)
    assert count_documents(db) == 0 and issues(db) == []
    assert get_progress(db, str(path.resolve())) is None


def test_an_empty_file_is_one_error_but_a_watched_one_may_still_be_written(db, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("")
    with pytest.raises(DataError, match="a.jsonl: empty file"):
        ingester(db).ingest_file(path)
    assert ingester(db).ingest_file(path, follow=True).read == 0


def test_empty_standard_input_is_one_error(db):
    with pytest.raises(DataError, match="<stdin>: empty input"):
        ingester(db).ingest_stream(io.BytesIO(b""))
    with pytest.raises(DataError, match="<stdin>: empty input"):
        ingester(db).ingest_stream(io.BytesIO(b"id,time,text\n"), fmt="csv")


def test_follow_mode_waits_for_an_unfinished_csv_header(db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,time,te")  # a watched file caught while its header is being written
    ing = ingester(db)
    assert ing.ingest_file(path, follow=True).read == 0
    with path.open("a") as handle:
        handle.write("xt\nh1,2026-11-02T10:00:00Z,Helix Bank falls\n")
    report = ing.ingest_file(path, follow=True)
    assert (report.added, report.skipped) == (1, 0)


def test_a_jsonl_file_with_a_byte_order_mark_keeps_its_first_row(db, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc(1)).encode() + b"\n")
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 0)


def test_a_file_replaced_by_a_longer_one_is_read_again_not_resumed_mid_way(db, tmp_path):
    # A rotated log: same name, new content, longer than what was read. Resuming at the old
    # offset would silently skip the new file's first rows.
    path = write_jsonl(tmp_path / "feed.jsonl", [doc(i) for i in range(3)])
    warnings: list[str] = []
    ing = ingester(db)
    ing.warn = warnings.append
    ing.ingest_file(path)
    write_jsonl(path, [doc(i) for i in range(100, 110)])
    report = ing.ingest_file(path)
    assert report.added == 10 and count_documents(db) == 13
    assert any("replaced" in w for w in warnings)


def test_an_appended_file_is_resumed_without_a_replacement_warning(db, tmp_path):
    path = write_jsonl(tmp_path / "feed.jsonl", [doc(i) for i in range(3)])
    warnings: list[str] = []
    ing = ingester(db)
    ing.warn = warnings.append
    ing.ingest_file(path)
    with path.open("a") as handle:
        handle.write(json.dumps(doc(3)) + "\n")
    report = ing.ingest_file(path)
    assert (report.read, report.added) == (1, 1) and warnings == []


def test_the_cli_and_the_ingester_default_to_the_same_batch_size():
    from tunesmith_finance import cli, ingest

    # The CLI keeps its own copy so that it starts without importing the ingester.
    assert cli.DEFAULT_BATCH == ingest.DEFAULT_BATCH == cli.BATCH_SIZE.default


def test_a_locked_database_names_the_batchs_first_line_even_when_it_was_a_skipped_row(
    tmp_path, monkeypatch
):
    import tunesmith_finance.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "LOCK_RETRIES", 0)
    path = write_jsonl(tmp_path / "a.jsonl", ["{broken", doc(1), doc(2)])
    db = open_store(tmp_path / "f.sqlite", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "f.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError, match=r"stopped before .*a.jsonl:1,"):
            ingester(db).ingest_file(path)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert issues(db) == []  # the broken line is reported by the rerun, not lost
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (2, 1)
    db.close()


class _ChangesTheFileWhileScoring(KeywordModel):
    """Runs ``change`` during its first batch: the file is rotated while ingest scores it."""

    def __init__(self, change):
        super().__init__()
        self.change = change

    def score(self, texts, *, batch_size=32):
        if self.calls == 0:
            self.change()
        return super().score(texts, batch_size=batch_size)


def test_a_file_replaced_while_its_batch_is_scored_is_read_again_from_the_start(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(5)])

    def rotate():
        new = write_jsonl(tmp_path / "new.jsonl", [doc(100 + i, f"rotated {i}") for i in range(8)])
        os.replace(new, path)

    Ingester(db, _ChangesTheFileWhileScoring(rotate), warn=lambda _m: None).ingest_file(path)
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped, count_documents(db)) == (8, 0, 13)


def test_a_file_cut_while_its_batch_is_scored_and_grown_again_is_read_from_the_start(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [doc(i) for i in range(5)])

    def cut():
        path.write_text("")  # copytruncate: the same file, emptied in place

    Ingester(db, _ChangesTheFileWhileScoring(cut), warn=lambda _m: None).ingest_file(path)
    write_jsonl(path, [doc(100 + i, f"after the cut {i}") for i in range(8)])
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped, count_documents(db)) == (8, 0, 13)
