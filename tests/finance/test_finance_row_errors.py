"""A skipped row's report names the column to fix, as the core's data errors do."""

from __future__ import annotations

import pytest


def _ingester(db):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester

    return Ingester(db, KeywordModel(), warn=lambda _m: None)


def test_a_skipped_csv_row_names_the_time_column_it_was_read_from(db, tmp_path):
    from finance_fakes import write_csv

    path = write_csv(
        tmp_path / "news.csv",
        ["id", "published", "headline"],
        [["a", "2026-11-02T10:00:00Z", "Helix falls"], ["b", "next tuesday", "Orcana rises"]],
    )
    report = _ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (1, 1)
    assert str(report.issues[0]) == (
        f"{path}:3: skipped: column 'published': unparsable time 'next tuesday' (expected "
        "ISO 8601, YYYYMMDD or Unix seconds, or RFC 2822 as 'Thu, 05 Nov 2026 14:03:00 GMT')"
    )
    stored = db.query("SELECT detail FROM finance_issues")
    assert stored[0]["detail"].startswith("column 'published': unparsable time")


def test_a_skipped_workbook_row_names_its_sheet_row_and_column(db, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "News"
    book.create_sheet("Notes")
    sheet.append(["id", "date", "text"])
    sheet.append(["a", 45231.5, "Helix falls"])
    sheet.append(["b", 60, "Orcana rises"])  # Excel's 1900-02-29
    path = tmp_path / "news.xlsx"
    book.save(path)
    report = _ingester(db).ingest_file(f"{path}#News")
    assert report.skipped == 1
    assert str(report.issues[0]) == (
        f"{path}#News:3: skipped: column 'date': time 60 is Excel's 1900-02-29, a day that "
        "never was"
    )


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        (
            {"id": "a", "time": "2026-11-02T10:00:00Z", "headline": " "},
            "column 'headline': missing",
        ),
        ({"id": "a", "time": "2026-11-02T10:00:00Z"}, "column 'text': missing or empty text"),
        ({"id": "a", "created_at": "", "text": "x"}, "column 'created_at': missing time"),
        ({"doc_id": True, "time": "2026-11-02T10:00:00Z", "text": "x"}, "column 'doc_id': id is"),
        ({"id": "  ", "time": "2026-11-02T10:00:00Z", "text": "x"}, "column 'id': empty id"),
        ({"id": "a", "time": "2026-11-02T10:00:00Z", "title": ["x"]}, "column 'title': text is"),
        ({"id": "a", "timestamp": "0001-01-01", "text": "x"}, "column 'timestamp': time '0001"),
    ],
)
def test_each_row_error_names_the_field_at_fault(row, detail):
    from tunesmith_finance.documents import RowError, to_document

    with pytest.raises(RowError) as info:
        to_document(row)
    assert str(info.value).startswith(detail)
    assert info.value.column == detail.split("'")[1]


def test_a_time_flag_error_names_no_column():
    # --since/--until share the time reader: a flag has no column to name
    from tunesmith_finance.documents import RowError, parse_time

    with pytest.raises(RowError) as info:
        parse_time("next tuesday")
    assert str(info.value).startswith("unparsable time 'next tuesday'")
    assert info.value.column is None
