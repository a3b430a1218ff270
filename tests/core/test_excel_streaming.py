"""Big, oddly typed and hostile workbooks: rows are read as they are used, numbers stored as
text in a time column are never a silent 1970 date, a two-cell title row does not take the
header's place, and a zip bomb or a crafted row number is one line naming the file."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

openpyxl = pytest.importorskip("openpyxl")

from tunesmith.data import excel  # noqa: E402
from tunesmith.data.load import load_text_dataset, read_texts  # noqa: E402
from tunesmith.data.readers import reader_for  # noqa: E402
from tunesmith.data.times import parse_time  # noqa: E402
from tunesmith.errors import DataError  # noqa: E402

SHEET = "xl/worksheets/sheet1.xml"


def workbook(path: Path, rows: list[list[object]], *, text_cols: str = "") -> Path:
    """Save ``rows`` on one sheet; the columns in ``text_cols`` ("A") are Text-formatted."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    for row in rows:
        sheet.append(row)
    for letter in text_cols:
        for (cell,) in sheet[f"{letter}1:{letter}{len(rows)}"]:
            cell.number_format = "@"
    book.save(path)
    return path


def rewrite_sheet(path: Path, change) -> Path:
    """Rewrite the first sheet's XML with ``change(xml) -> xml``, as another program saves it."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts[SHEET] = change(parts[SHEET].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_rows_come_as_they_are_read_so_a_damaged_end_does_not_hide_the_first_rows(tmp_path):
    rows = [["text", "label"], *([f"text {i}", "a"] for i in range(200))]
    path = workbook(tmp_path / "big.xlsx", rows)
    # Cut the sheet's XML after row 100: a reader that parses the whole sheet first fails
    # before giving any row; a streaming one gives the rows before the damage.
    rewrite_sheet(path, lambda xml: xml[: xml.index('<row r="101"')] + "<row r=")
    reader = reader_for(path)(path)
    first = next(reader)
    assert (first["text"], first["__row__"]) == ("text 0", 2)
    with pytest.raises(DataError, match=r"cannot read the sheet after row 100 \(a damaged"):
        list(reader)


def test_empty_formatted_rows_below_the_data_are_skipped_without_holding_them(tmp_path):
    path = workbook(tmp_path / "styled.xlsx", [["text", "label"], ["a", "b"]])
    empty = "".join(f'<row r="{n}" s="1" customFormat="1"/>' for n in range(3, 20_003))
    rewrite_sheet(path, lambda xml: xml.replace("</sheetData>", empty + "</sheetData>"))
    assert load_text_dataset(path).texts == ["a"]


def test_a_zip_bomb_is_refused_in_one_line_before_any_xml_is_read(tmp_path, monkeypatch):
    # The ratio is checked from 64 MiB up; 8 MiB here keeps the test fast.
    monkeypatch.setattr(excel, "_RATIO_FROM", 4 << 20)
    path = workbook(tmp_path / "bomb.xlsx", [["text", "label"], ["a", "b"]])
    # Spaces pack about 1,000 times: what a zip bomb is made of.
    pad = " " * (8 << 20)
    rewrite_sheet(path, lambda xml: xml.replace("<sheetData>", "<sheetData>" + pad))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataError) as caught:
        load_text_dataset(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: the workbook's part {SHEET} unpacks to 8 MiB (")
    assert "a zip bomb" in message and "\n" not in message


def test_a_row_or_column_past_excels_limits_is_a_crafted_file(tmp_path):
    path = workbook(tmp_path / "crafted.xlsx", [["text", "label"], ["a", "b"]])
    rewrite_sheet(path, lambda xml: xml.replace('r="2"', 'r="99999999"').replace("A2", "A99999999"))
    with pytest.raises(DataError, match=r"a row numbered 99999999, past Excel's last row"):
        load_text_dataset(path)
    workbook(path, [["text", "label"], ["a", "b"]])
    rewrite_sheet(path, lambda xml: xml.replace('r="B2"', 'r="ZZZ2"'))
    with pytest.raises(DataError, match=r"row 2 has a cell in column 18,278, past Excel's"):
        load_text_dataset(path)


def test_a_two_cell_title_row_does_not_take_the_place_of_the_header(tmp_path):
    path = workbook(
        tmp_path / "report.xlsx",
        [["Q3 report", "Bank X"], [], ["text", "label"], ["i lost my card", "card"]],
    )
    data = load_text_dataset(path)
    assert (data.texts, data.label_names, data.rows) == (["i lost my card"], ["card"], [4])
    assert read_texts(path) == ["i lost my card"]
    # The same rows read with other column names: the title is the header, as before.
    sheet = excel.read_sheet(path)
    assert (sheet.header_row, [name for _, name in sheet.columns]) == (1, ["Q3 report", "Bank X"])
    # A caller that names its columns itself.
    sheet = excel.read_sheet(path, prefer=["label"])
    assert sheet.header_row == 3


def test_numbers_stored_as_text_in_a_time_column_are_read_only_when_unambiguous(tmp_path):
    path = workbook(
        tmp_path / "times.xlsx",
        [["time", "text"], ["1700000000", "unix"], ["20231101", "basic"], ["45231.5", "typed"]],
        text_cols="A",
    )
    rows = list(reader_for(path)(path))
    assert parse_time(rows[0]["time"])[0] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert parse_time(rows[1]["time"])[0] == dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError) as caught:
        parse_time(rows[2]["time"])
    assert str(caught.value) == (
        "time '45231.5' is a number stored as text (a Text-formatted cell): as Excel serial "
        "days 2023-11-01 12:00 or as Unix seconds 1970-01-01 12:33:51?; in Excel, convert the "
        "cell to a number (read as serial days) or format it as a date, or write the time as "
        "2023-11-01T12:00"
    )
    # Everywhere else it is the text it was: a question, a label, an id.
    assert rows[2]["time"] == "45231.5" and isinstance(rows[2]["time"], str)
    # The same text from a CSV is still Unix seconds, as it always was.
    assert parse_time("45231.5")[0].year == 1970


def test_a_finance_workbook_names_the_cell_of_a_number_stored_as_text(tmp_path):
    sources = pytest.importorskip("tunesmith_finance.sources")
    documents = pytest.importorskip("tunesmith_finance.documents")
    path = workbook(
        tmp_path / "news.xlsx",
        [["Q3 report", "Bank X"], ["id", "time", "text"], ["n1", "45231.5", "rates cut"]],
        text_cols="B",
    )
    book = sources.read_workbook(path)
    assert book.rows[0].line == 3
    with pytest.raises(documents.RowError) as caught:
        documents.to_document(book.rows[0].value)
    assert caught.value.column == "time"
    assert re.match(r"time '45231\.5' is a number stored as text", caught.value.reason)
