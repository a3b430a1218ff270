"""Follow-ups of the finance reviews: score reads ingest's text fields, oversized records, ids."""

from __future__ import annotations

import io
import json


def test_score_file_reads_a_headline_column_as_ingest_does(cli, tiny_model, tmp_path):
    data = tmp_path / "feed.jsonl"
    data.write_text(
        '{"id": 1, "time": "2026-01-05T10:00:00Z", "headline": "Helix Bank shares plunge"}\n'
        '{"id": 2, "time": "2026-01-05T11:00:00Z", "title": "Orcana beats estimates"}\n',
        encoding="utf-8",
    )
    result = cli("finance", "score", "-m", str(tiny_model), "--file", str(data), "--json")
    assert result.exit_code == 0, result.output
    texts = [json.loads(line)["text"] for line in result.stdout.strip().splitlines()]
    assert texts == ["Helix Bank shares plunge", "Orcana beats estimates"]


def test_an_unparsable_feed_time_says_rfc_2822_is_read_too():
    import pytest

    from tunesmith_finance.documents import RowError, to_document

    with pytest.raises(RowError) as info:
        to_document({"id": "a", "time": "next tuesday", "text": "Helix falls"})
    message = info.value.reason
    assert message.startswith("unparsable time 'next tuesday' (expected ISO 8601")
    assert "Unix seconds, or RFC 2822" in message


# -- records past the size limit -------------------------------------------------------------


class _Watched(io.BytesIO):
    """A byte stream that remembers the longest piece one ``readline`` call returned."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        piece = super().readline(size)
        self.longest = max(self.longest, len(piece))
        return piece


def _ingester(db):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester

    return Ingester(db, KeywordModel(), warn=lambda _m: None)


def test_a_jsonl_line_past_the_record_limit_is_one_row_error_and_the_next_line_is_read(
    db, tmp_path
):
    from finance_fakes import doc

    from tunesmith_finance.sources import MAX_RECORD_BYTES

    path = tmp_path / "feed.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc(1)) + "\n")
        handle.write(json.dumps(doc(2, "x" * (MAX_RECORD_BYTES + 10))) + "\n")
        handle.write(json.dumps(doc(3)) + "\n")
    report = _ingester(db).ingest_file(path)
    assert (report.read, report.added, report.skipped) == (3, 2, 1)
    assert str(report.issues[0]).startswith(f"{path}:2: skipped: record of ")
    assert f"longer than the {MAX_RECORD_BYTES:,} read" in str(report.issues[0])
    stored = db.query("SELECT id, line FROM finance_documents ORDER BY line")
    assert [(r["id"], r["line"]) for r in stored] == [("d1", 1), ("d3", 3)]


def test_a_jsonl_line_without_newlines_is_never_read_whole(monkeypatch):
    from tunesmith_finance import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 100)
    stream = _Watched(b'{"id": 1, "text": "' + b"y" * 5000 + b'"}')
    rows = list(sources.iter_jsonl(stream))
    assert [(r.line, r.end, r.value) for r in rows] == [(1, 5000 + 21, None)]
    assert "record of 5,021 bytes" in (rows[0].error or "")
    assert stream.longest <= 1 << 16  # the limit, or one chunk of the rest


def test_a_growing_oversized_jsonl_line_waits_in_follow_mode_then_is_skipped(monkeypatch):
    from tunesmith_finance import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 100)
    start = b'{"text": "' + b"z" * 300
    assert list(sources.iter_jsonl(io.BytesIO(start), follow=True)) == []
    done = start + b'"}\n{"id": "next"}\n'
    rows = list(sources.iter_jsonl(io.BytesIO(done), follow=True))
    assert [(r.line, r.value) for r in rows] == [(1, None), (2, {"id": "next"})]
    assert rows[1].end == len(done)


def test_a_csv_quoted_field_past_the_limit_is_skipped_to_where_its_quote_closes(
    monkeypatch, db, tmp_path
):
    from tunesmith_finance import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 200)
    path = tmp_path / "feed.csv"
    long_text = ("a, b " * 30 + "\n") * 3  # commas and newlines inside the quotes
    path.write_text(
        "id,time,text\n"
        "1,2026-01-05T10:00:00Z,Helix falls\n"
        f'2,2026-01-05T11:00:00Z,"{long_text}"\n'
        "3,2026-01-05T12:00:00Z,Orcana rises\n",
        encoding="utf-8",
    )
    report = _ingester(db).ingest_file(path)
    assert (report.read, report.added, report.skipped) == (3, 2, 1)
    assert str(report.issues[0]).startswith(f"{path}:3: skipped: record of ")
    stored = db.query("SELECT id, line FROM finance_documents ORDER BY line")
    assert [(r["id"], r["line"]) for r in stored] == [("1", 2), ("3", 7)]


def test_a_csv_quote_never_closed_is_read_in_chunks_as_one_row_error(monkeypatch):
    from tunesmith_finance import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 200)
    body = b'1,t,"opens here\n' + b"more text\n" * 2000
    stream = _Watched(body)
    rows = list(sources.iter_csv(stream, ["id", "time", "text"], offset=0, line=1))
    assert [(r.line, r.end, r.value) for r in rows] == [(2, len(body), None)]
    assert f"record of {len(body):,} bytes" in (rows[0].error or "")
    assert stream.longest <= 201


def test_a_csv_header_past_the_limit_is_one_error_naming_line_1(monkeypatch):
    import pytest

    from tunesmith.errors import DataError
    from tunesmith_finance import sources

    monkeypatch.setattr(sources, "MAX_RECORD_BYTES", 50)
    with pytest.raises(DataError, match=r"feed\.csv:1: the header is longer than 50 bytes"):
        sources.read_header(io.BytesIO(b"id,time," + b"t" * 100 + b"\n"), name="feed.csv")


def test_a_csv_field_longer_than_the_csv_modules_default_limit_is_read(db, tmp_path):
    import csv

    csv.field_size_limit(131_072)  # the module's default, as in a fresh process
    path = tmp_path / "feed.csv"
    path.write_text(
        f'id,time,text\n1,2026-01-05T10:00:00Z,"Helix falls {"x" * 200_000}"\n',
        encoding="utf-8",
    )
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped, report.truncated) == (1, 0, 1)


# -- ids -------------------------------------------------------------------------------------


def test_a_whole_float_id_is_the_same_document_as_the_integer_id():
    from tunesmith_finance.documents import to_document

    row = {"time": "2026-01-05T10:00:00Z", "text": "Helix falls"}
    assert to_document({**row, "id": 2.0}).id == to_document({**row, "id": 2}).id == "2"
    assert to_document({**row, "id": 2.5}).id == "2.5"
    assert to_document({**row, "id": "2.0"}).id == "2.0"  # text is kept as written


def test_a_boolean_id_skips_the_row_with_a_row_error(db, tmp_path):
    from finance_fakes import doc, write_jsonl

    path = write_jsonl(tmp_path / "feed.jsonl", [{**doc(1), "id": True}, {**doc(2), "id": 2.0}])
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert str(report.issues[0]) == (
        f"{path}:1: skipped: column 'id': id is true, not an id (a text or a number)"
    )
    assert [r["id"] for r in db.query("SELECT id FROM finance_documents")] == ["2"]
