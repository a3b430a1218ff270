"""An events file's bad time says why, in the core's words, at its file, row and column."""

from __future__ import annotations

import pytest

from tunesmith.errors import DataError
from tunesmith_recommend.data import load_events, load_items


@pytest.fixture
def catalogue(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,description,genres\na,Alpha,,\nb,Beta,,\n", encoding="utf-8")
    return load_items(path)


def _events_book(tmp_path, times):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Events"
    book.create_sheet("Notes")
    sheet.append(["user_id", "item_id", "timestamp"])
    for time in times:
        sheet.append(["u1", "a", time])
    path = tmp_path / "events.xlsx"
    book.save(path)
    return f"{path}#Events"


@pytest.mark.parametrize(
    ("serial", "reason"),
    [
        (60, "time 60 is Excel's 1900-02-29, a day that never was"),
        (0.5, "time 0.5 is not an Excel date (day 1 is 1900-01-01)"),
    ],
)
def test_a_workbook_time_excel_has_no_day_for_says_why(catalogue, tmp_path, serial, reason):
    book = _events_book(tmp_path, [45231.5, serial])
    with pytest.raises(DataError) as info:
        load_events(book, catalogue)
    assert str(info.value).startswith(f"{book}:3, column 'timestamp': {reason}")


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1e300", "time '1e300' is out of range"),
        ("inf", "time 'inf' is not a finite number"),
        (
            "next tuesday",
            "unparsable time 'next tuesday' (expected ISO 8601, YYYYMMDD or Unix seconds, e.g. "
            "2026-01-31T18:00:00Z or 1769882400)",
        ),
        ("", "missing time; write unix seconds or ISO 8601, e.g. 2026-01-31T18:00:00Z"),
    ],
)
def test_a_csv_time_error_keeps_the_core_reason(catalogue, tmp_path, cell, reason):
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,item_id,timestamp\nu1,a,1700000000\nu1,b,{cell}\n")
    with pytest.raises(DataError) as info:
        load_events(path, catalogue)
    assert str(info.value).startswith(f"{path}:3, column 'timestamp': {reason}")
