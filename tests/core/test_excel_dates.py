"""Excel dates as analysts have them: date cells, and a date column in General format (serial
days, as a CSV pasted into Excel leaves it), in the 1900 or the 1904 date system. Also which
sheet ``book.xlsx`` reads when some are hidden, and where the header is found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

openpyxl = pytest.importorskip("openpyxl")

from tunesmith.data.readers import reader_for  # noqa: E402
from tunesmith.data.times import ISO_8601, UNIX_SECONDS, parse_time  # noqa: E402
from tunesmith.errors import DataError  # noqa: E402

NOV_1_NOON = dt.datetime(2023, 11, 1, 12, 0, tzinfo=dt.UTC)


def workbook(path: Path, rows: list[list[object]], *, date1904: bool = False) -> Path:
    book = openpyxl.Workbook()
    if date1904:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904

        book.epoch = CALENDAR_MAC_1904
    book.active.title = "Data"
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def times_of(path: Path) -> list[object]:
    return [parse_time(row["time"])[0] for row in reader_for(path)(path)]


def test_a_general_format_date_column_is_excel_serial_days_not_seconds_in_1970(tmp_path):
    path = workbook(
        tmp_path / "pasted.xlsx",
        [["time", "text"], [45231.5, "noon"], [45231, "midnight"], [1, "day one"], [61, "march"]],
    )
    assert times_of(path) == [
        NOV_1_NOON,
        dt.datetime(2023, 11, 1, tzinfo=dt.UTC),
        dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1900, 3, 1, tzinfo=dt.UTC),  # after Excel's 1900-02-29 that never was
    ]
    (row, *_) = reader_for(path)(path)
    assert parse_time(row["time"])[1] == ISO_8601  # a calendar date, as a date cell is
    # The same number from a CSV is still Unix seconds.
    assert parse_time(45231.5) == (
        dt.datetime(1970, 1, 1, 12, 33, 51, 500000, dt.UTC),
        UNIX_SECONDS,
    )


def test_a_1904_workbook_counts_its_serial_days_from_1904(tmp_path):
    path = workbook(
        tmp_path / "mac.xlsx", [["time", "text"], [45231.5 - 1462, "noon"]], date1904=True
    )
    assert times_of(path) == [NOV_1_NOON]


def test_a_serial_day_excel_never_had_is_an_error_and_big_numbers_keep_their_meaning(tmp_path):
    path = workbook(
        tmp_path / "odd.xlsx",
        [["time", "text"], [0.5, "a time of day"], [60, "1900-02-29"], [-3, "before"],
         [20261105, "yyyymmdd"], [1793916000, "unix seconds pasted"]],
    )  # fmt: skip
    rows = list(reader_for(path)(path))
    reasons = ["is not an Excel date", "a day that never was", "not an Excel"]
    for row, reason in zip(rows[:3], reasons, strict=True):
        with pytest.raises(ValueError, match=reason):
            parse_time(row["time"])
    assert [parse_time(row["time"])[0] for row in rows[3:]] == [
        dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
        dt.datetime.fromtimestamp(1793916000, dt.UTC),
    ]


def test_recommend_reads_a_general_format_time_column_as_dates(tmp_path):
    data = pytest.importorskip("tunesmith_recommend.data")
    book = openpyxl.Workbook()
    book.active.title = "Items"
    book.active.append(["item_id", "title"])
    book.active.append([10, "Dune"])
    book.active.append([11, "Emma"])
    events = book.create_sheet("Events")
    events.append(["user_id", "item_id", "timestamp"])
    events.append([1, 10, 45231.5])
    events.append([1, 11, 60])
    path = tmp_path / "shop.xlsx"
    book.save(path)
    catalogue = data.load_items(f"{path}#Items", text_cols=())
    with pytest.raises(DataError, match=r"shop\.xlsx#Events:3, column 'timestamp'"):
        data.load_events(f"{path}#Events", catalogue)
    events.delete_rows(3)
    book.save(path)
    loaded = data.load_events(f"{path}#Events", catalogue)
    assert loaded.times.tolist() == [NOV_1_NOON.timestamp()]


def test_book_xlsx_reads_the_first_sheet_shown_and_a_hidden_one_only_by_name(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Lookup"
    book.active.append(["code", "name"])
    book.active.append(["X", "hidden helper"])
    book.active.sheet_state = "hidden"
    shown = book.create_sheet("Data")
    shown.append(["text", "label"])
    shown.append(["my card never arrived", "card"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    assert [r["text"] for r in reader_for(path)(path)] == ["my card never arrived"]
    named = Path(f"{path}#lookup")
    assert [r["name"] for r in reader_for(named)(named)] == ["hidden helper"]


def test_the_header_is_found_below_blank_rows_and_a_merged_title_in_a_sheet_named_with_a_hash(
    tmp_path,
):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Q3 #2 report"
    sheet["B3"] = "Card complaints, Q3"  # two blank rows, then a merged title
    sheet.merge_cells("B3:D3")
    sheet["B5"], sheet["C5"] = "text", "label"
    sheet["B6"], sheet["C6"] = "my card never arrived", "card"
    path = tmp_path / "report.xlsx"
    book.save(path)
    named = Path(f"{path}#Q3 #2 report")
    assert list(reader_for(named)(named)) == [
        {"text": "my card never arrived", "label": "card", "__row__": 6}
    ]
