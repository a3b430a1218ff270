"""Excel workbooks (.xlsx) as data files: every command that reads a data file reads them.

The workbooks are written here with openpyxl, as Excel lays them out: a merged title above the
header, several sheets, dates as Excel dates, numbers as numbers, empty rows at the end.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

openpyxl = pytest.importorskip("openpyxl")

from tunesmith.data.load import load_text_dataset, read_texts  # noqa: E402
from tunesmith.data.readers import reader_for  # noqa: E402
from tunesmith.data.times import parse_time  # noqa: E402
from tunesmith.errors import DataError  # noqa: E402
from tunesmith.testing import make_tiny_base_model  # noqa: E402

TEXTS = ["i lost my card", "my card is gone", "where is my refund", "refund my money"]
LABELS = ["card", "card", "refund", "refund"]


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """Save ``sheets`` (name: rows) as a workbook at ``path``, in that order."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def rows_of(path: Path | str) -> list[dict[str, object]]:
    return list(reader_for(path)(Path(path)))


def with_stored(path: Path, cells: dict[str, str]) -> Path:
    """Store each cell's ``<v>`` as given, as other programs write it: a formula's saved text
    (openpyxl saves none), or a number as ``1.0``. ``{"B2": '"card"'}`` is a text value."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    for cell, value in cells.items():
        start = sheet.index(f'<c r="{cell}"')
        end = sheet.index("</c>", start)
        cell_xml = re.sub(r"<v>[^<]*</v>|<v />", "", sheet[start:end])
        if value.startswith('"'):
            value = value.strip('"')
            cell_xml = cell_xml.replace(f'<c r="{cell}"', f'<c r="{cell}" t="str"', 1)
        sheet = sheet[:start] + cell_xml + f"<v>{value}</v>" + sheet[end:]
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_rows_below_a_merged_title_carry_their_excel_row_numbers(tmp_path):
    path = tmp_path / "intents.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"] = "Support intents, exported 2026-03-01"
    sheet.merge_cells("A1:B1")
    sheet.append([])
    sheet.append(["text", "label"])
    for text, label in zip(TEXTS, LABELS, strict=True):
        sheet.append([text, label])
    sheet.append([None, None])
    sheet.append(["", "   "])  # cleared cells: Excel keeps them, they are no row
    book.save(path)
    data = load_text_dataset(path)
    assert data.texts == TEXTS
    assert data.rows == [4, 5, 6, 7]
    sheet["B6"] = None
    book.save(path)
    with pytest.raises(DataError) as caught:
        load_text_dataset(path)
    assert str(caught.value) == f"{path}:6, column 'label': empty value where a label is needed"


def test_a_sheet_is_chosen_after_a_hash_and_the_first_sheet_by_default(tmp_path):
    path = workbook(
        tmp_path / "book.xlsx",
        {
            "Train": [["text", "label"], *zip(TEXTS, LABELS, strict=True)],
            "Q1 #2": [["text", "label"], ["refund please", "refund"]],
        },
    )
    assert load_text_dataset(path).texts == TEXTS
    assert load_text_dataset(f"{path}#Q1 #2").texts == ["refund please"]
    assert read_texts(f"{path}#q1 #2") == ["refund please"]  # Excel's names ignore case
    with pytest.raises(DataError) as caught:
        load_text_dataset(f"{path}#Test")
    assert str(caught.value) == f"{path}: no sheet 'Test'; the sheets are: 'Train', 'Q1 #2'"
    with pytest.raises(DataError, match="file not found"):
        load_text_dataset(tmp_path / "other.xlsx#Train")


def test_errors_in_a_workbook_of_several_sheets_name_the_sheet_row_and_column(tmp_path):
    path = workbook(
        tmp_path / "book.xlsx",
        {"Train": [["text", "label"], ["i lost my card", "card"], [None, "card"]], "Notes": []},
    )
    with pytest.raises(DataError) as caught:
        load_text_dataset(path)
    assert str(caught.value).startswith(f"{path}:3, column 'text': ")
    workbook(path, {"Train": [["text", "label", "text"], ["a", "b", "c"]], "Notes": []})
    with pytest.raises(DataError) as caught:
        rows_of(path)
    assert str(caught.value) == (
        f"{path}#Train:1, column 'text': the header names this column twice (columns A and C); "
        "rename one"
    )


def test_whole_numbers_are_ints_so_an_id_of_1_is_not_1_point_0(tmp_path):
    # Excel stores every number as a float; some writers save 1 as "1.0".
    path = workbook(
        tmp_path / "faq.xlsx",
        {"FAQ": [["id", "question", "score"], [1, "How do I pay?", 0.5], [2, 2024, 3]]},
    )
    with_stored(path, {"A2": "1.0", "B3": "2024.0", "C3": "3.0E0"})
    rows = rows_of(path)
    assert [(row["id"], row["question"], row["score"]) for row in rows] == [
        (1, "How do I pay?", 0.5),
        (2, 2024, 3),
    ]
    # ints (WorkbookInt: an int that a time column reads as Excel serial days), never floats
    assert [isinstance(row["id"], int) and not isinstance(row["id"], float) for row in rows] == [
        True,
        True,
    ]
    data = load_text_dataset(path, text_col="question", label_col="id")
    assert data.texts == ["How do I pay?", "2024"]
    assert data.label_names == ["1", "2"]


def test_excel_dates_are_read_as_times(tmp_path):
    path = workbook(
        tmp_path / "events.xlsx",
        {"Events": [["user_id", "timestamp"], [7, dt.datetime(2026, 1, 31, 18, 0)]]},
    )
    (row,) = rows_of(path)
    assert row["timestamp"] == dt.datetime(2026, 1, 31, 18, 0)
    moment, _ = parse_time(row["timestamp"])
    assert moment == dt.datetime(2026, 1, 31, 18, 0, tzinfo=dt.UTC)


def test_a_formula_is_read_as_its_saved_value_and_one_without_a_value_is_an_error(tmp_path):
    path = workbook(
        tmp_path / "book.xlsx", {"Data": [["text", "label"], ["i lost my card", '=UPPER("card")']]}
    )
    with pytest.raises(DataError) as caught:
        rows_of(path)
    assert str(caught.value) == (
        f"{path}:2, column 'label': cell B2 holds a formula saved without its value (the "
        "workbook was written by a program that does not calculate); open it in Excel or "
        "LibreOffice and save it again"
    )
    with_stored(path, {"B2": '"card"'})
    assert rows_of(path)[0]["label"] == "card"


def test_an_error_cell_is_refused_at_its_cell(tmp_path):
    path = workbook(tmp_path / "book.xlsx", {"Data": [["text", "label"], ["a", "=1/0"]]})
    book = openpyxl.load_workbook(path)
    book.active["B2"].value = "#DIV/0!"
    book.active["B2"].data_type = "e"
    book.save(path)
    with pytest.raises(DataError) as caught:
        rows_of(path)
    assert str(caught.value) == (
        f"{path}:2, column 'label': cell B2 holds the Excel error #DIV/0!; fix the formula or "
        "clear the cell"
    )


def test_old_and_unreadable_workbooks_are_one_line_and_xlsm_is_read(tmp_path):
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(DataError, match=r"old\.xls: the old Excel format \(\.xls\) is not read"):
        load_text_dataset(old)
    renamed = tmp_path / "renamed.xlsx"
    renamed.write_bytes(old.read_bytes())
    with pytest.raises(DataError, match="old-format .xls workbook or a password-protected"):
        load_text_dataset(renamed)
    (tmp_path / "csv.xlsx").write_text("text,label\na,b\n")
    with pytest.raises(DataError, match="not a readable Excel workbook"):
        load_text_dataset(tmp_path / "csv.xlsx")
    macros = workbook(tmp_path / "macros.xlsm", {"Data": [["text", "label"], ["a", "b"]]})
    assert load_text_dataset(macros).texts == ["a"]


def test_train_reads_a_named_sheet_of_a_workbook(tmp_path, cli):
    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    path = workbook(
        tmp_path / "book.xlsx",
        {
            "Notes": [["nothing here"]],
            "Train": [["text", "label"], *zip(TEXTS, LABELS, strict=True)],
        },
    )
    out = tmp_path / "model"
    result = cli("train", "--model", str(base), "--data", f"{path}#Train", "--out", str(out),
                 "--epochs", "1", "--eval-fraction", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = cli("evaluate", "--model", str(out), "--data", f"{path}#Train")
    assert result.exit_code == 0, result.output


def test_plugins_read_workbooks_and_their_sheets(tmp_path):
    kb = pytest.importorskip("tunesmith_support.kb")
    data = pytest.importorskip("tunesmith_recommend.data")
    path = workbook(
        tmp_path / "company.xlsx",
        {
            "FAQ": [["id", "question", "answer"], [1.0, "How do I pay?", "By card."]],
            "Items": [["item_id", "title"], [10, "Dune"], [11.0, "Emma"]],
            "Events": [
                ["user_id", "item_id", "timestamp"],
                [1, 10, dt.datetime(2026, 1, 1)],
                [1, 11, dt.datetime(2026, 1, 2)],
            ],
        },
    )
    (entry,) = kb.read_sources(f"{path}#FAQ")
    assert (entry.id, entry.question) == ("1", "How do I pay?")
    folder = tmp_path / "kb"
    folder.mkdir()
    workbook(folder / "faq.xlsx", {"FAQ": [["question", "answer"], ["Hours?", "9 to 5."]]})
    (folder / "~$faq.xlsx").write_bytes(b"\x0bowner")  # Office's lock file while it is open
    assert [e.answer for e in kb.read_sources(folder)] == ["9 to 5."]
    catalogue = data.load_items(f"{path}#Items", text_cols=())
    assert catalogue.ids == ["10", "11"]
    events = data.load_events(f"{path}#Events", catalogue)
    assert events.times.tolist() == [1767225600.0, 1767312000.0]
