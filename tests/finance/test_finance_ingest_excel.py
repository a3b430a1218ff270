"""``finance ingest`` of Excel workbooks as analysts save them: a title above the header, a
named sheet, dates as date cells or as serial numbers, rows appended, edited or sorted between
runs, computed columns with error cells. A workbook resumes at its last committed Excel row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from finance_fakes import KeywordModel

from tunesmith.errors import DataError, UserInputError
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.storage import count_documents, get_progress

openpyxl = pytest.importorskip("openpyxl")

HEADER = ["id", "time", "headline", "change %"]


def news(i: int) -> list[object]:
    """Row ``i``: its time a date cell on even rows, a General-format serial number on odd."""
    moment = dt.datetime(2026, 11, 2, 9, 0) + dt.timedelta(hours=i)
    serial = (moment - dt.datetime(1899, 12, 30)) / dt.timedelta(days=1)
    return [i, moment if i % 2 == 0 else serial, f"Helix Bank shares plunge {i}", 0.1 * i]


def save(path: Path, rows: list[list[object]], *, sheet: str = "Q3 #2 news") -> Path:
    """A workbook as an analyst keeps it: a hidden notes sheet first, then the data under a
    merged title and a blank row."""
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["Read me first"])
    book.active.sheet_state = "hidden"
    data = book.create_sheet(sheet)
    data.append(["Bank news, Q3"])
    data.merge_cells("A1:D1")
    data.append([])
    data.append(HEADER)  # row 3
    for row in rows:
        data.append(row)
    book.save(path)
    return path


class Warnings:
    """The warnings an ingester gives."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def __call__(self, message: str) -> None:
        self.said.append(message)


def ingester(db, *, batch_size: int = 1024, model=None, warn=None) -> Ingester:
    return Ingester(
        db,
        model or KeywordModel(),
        batch_size=batch_size,
        warn=warn or (lambda _m: None),
    )


def stored(db) -> list[tuple]:
    rows = db.query("SELECT id, time, origin, line FROM finance_documents ORDER BY line")
    return [tuple(r) for r in rows]


def test_a_named_sheet_is_ingested_at_its_excel_rows_with_serial_dates_read_as_dates(db, tmp_path):
    path = save(tmp_path / "news.xlsx", [news(1), news(2)])
    report = ingester(db).ingest_file(f"{path}#q3 #2 news")  # case-blind, as Excel
    assert (report.added, report.skipped) == (2, 0)
    origin = f"{path}#Q3 #2 news"
    # 46328.416666 (General format) is 2026-11-02 10:00, not 46328 seconds into 1970.
    assert stored(db) == [
        ("1", "2026-11-02T10:00:00Z", origin, 4),
        ("2", "2026-11-02T11:00:00Z", origin, 5),
    ]


def test_appended_rows_are_read_from_the_last_committed_row_and_the_first_sheet_shown(db, tmp_path):
    path = save(tmp_path / "news.xlsx", [news(i) for i in range(1, 6)])
    first = ingester(db, batch_size=2).ingest_file(path)
    save(path, [news(i) for i in range(1, 9)])  # saved again with three rows more
    second = ingester(db).ingest_file(f"{path}#Q3 #2 news")  # the same sheet, by name
    assert (first.added, second.read, second.added, second.duplicates) == (5, 3, 3, 0)
    progress = get_progress(db, f"{path.resolve()}#Q3 #2 news")
    assert (progress.offset, progress.line) == (11, 11)


def test_rows_edited_or_sorted_above_the_recorded_row_are_read_again_from_the_first(db, tmp_path):
    path = save(tmp_path / "news.xlsx", [news(i) for i in range(1, 5)])
    ingester(db).ingest_file(path)
    # Sorted newest first with a row inserted: resuming at row 7 would skip news 5.
    save(path, [news(i) for i in range(5, 0, -1)])
    warnings = Warnings()
    report = ingester(db, warn=warnings).ingest_file(path)
    assert (report.read, report.added, report.duplicates) == (5, 1, 4)
    assert any("have changed since" in w and "row 7" in w for w in warnings.said)
    assert count_documents(db) == 5


def test_a_run_that_stops_mid_workbook_resumes_after_its_last_committed_batch(db, tmp_path):
    class Crashes(KeywordModel):
        def score(self, texts, *, batch_size=32):
            if self.calls == 2:
                raise KeyboardInterrupt  # killed while scoring the third batch
            return super().score(texts, batch_size=batch_size)

    path = save(tmp_path / "news.xlsx", [news(i) for i in range(1, 11)])
    with pytest.raises(KeyboardInterrupt):
        ingester(db, batch_size=3, model=Crashes()).ingest_file(path)
    assert count_documents(db) == 6
    report = ingester(db, batch_size=3).ingest_file(path)
    assert (report.read, report.added, report.duplicates) == (4, 4, 0)
    assert count_documents(db) == 10


def test_an_error_cell_skips_its_row_only_in_a_column_a_document_is_made_of(db, tmp_path):
    path = save(tmp_path / "news.xlsx", [news(1), news(2), news(3)])
    book = openpyxl.load_workbook(path)
    book["Q3 #2 news"]["D4"] = "#DIV/0!"  # a computed change % that failed: not read
    book["Q3 #2 news"]["D4"].data_type = "e"
    book["Q3 #2 news"]["C5"] = "#N/A"  # a looked-up headline that was not found
    book["Q3 #2 news"]["C5"].data_type = "e"
    book.save(path)
    report = ingester(db).ingest_file(path)
    assert (report.added, report.skipped) == (2, 1)
    (issue,) = report.issues
    assert (issue.line, issue.kind) == (5, "skipped")
    assert "cell C5 holds the Excel error #N/A" in issue.detail


def test_a_header_without_a_text_column_names_its_excel_row(db, tmp_path):
    path = tmp_path / "news.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Exported 2026-11-05"])
    book.active.append(["id", "time", "body"])
    book.active.append([1, dt.datetime(2026, 11, 5), "Helix Bank shares plunge"])
    book.save(path)
    with pytest.raises(DataError, match=r"news\.xlsx:2, column 'text': no such column"):
        ingester(db).ingest_file(path)


def test_other_spreadsheets_and_unknown_sheets_are_refused_in_one_line(db, tmp_path):
    path = save(tmp_path / "news.xlsx", [news(1)])
    with pytest.raises(DataError, match="no sheet 'Q4'; the sheets are: 'Notes', 'Q3 #2 news'"):
        ingester(db).ingest_file(f"{path}#Q4")
    old = tmp_path / "news.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    with pytest.raises(UserInputError, match=r"\(\.xls\) is not read; save it .* \(\.xlsx\)"):
        ingester(db).ingest_file(old)


def test_cli_ingest_reads_a_workbook_and_refuses_a_missing_sheet_before_the_model(tmp_path, cli):
    path = save(tmp_path / "news.xlsx", [news(1), news(2)])
    db = tmp_path / "f.sqlite"
    missing = tmp_path / "no-model"  # never loaded: the sheet is checked first
    result = cli("finance", "ingest", f"{path}#Q4", "--model", str(missing), "--db", str(db))
    assert result.exit_code != 0
    assert "no sheet 'Q4'" in result.output and not db.exists()


def test_watch_leaves_workbooks_to_ingest_and_says_so_once(db, tmp_path):
    from tunesmith_finance.watch import watch_folder

    folder = tmp_path / "feed"
    folder.mkdir()
    save(folder / "news.xlsx", [news(1)])
    (folder / "~$news.xlsx").write_bytes(b"\x0bowner")  # Excel's lock file while it is open
    lines: list[str] = []
    watch_folder(ingester(db), folder, once=True, log=lines.append)
    assert count_documents(db) == 0
    assert len(lines) == 1 and "news.xlsx: workbooks are not watched" in lines[0]
    assert "tunesmith finance ingest" in lines[0]


def test_replay_reads_a_workbook_sheet_in_time_order(tmp_path):
    from tunesmith_finance.replay import read_stream

    path = save(tmp_path / "news.xlsx", [news(3), news(1), news(2)])
    records, bad = read_stream(f"{path}#Q3 #2 news")
    assert ([line for _, line, _ in records], bad) == ([5, 6, 4], 0)
