"""Excel workbooks (``.xlsx``, ``.xlsm``) read as rows, like a CSV file with a header.

``book.xlsx`` reads the first worksheet Excel shows (hidden sheets are read only by name);
``book.xlsx#Sheet name`` reads that one. Each row's ``__row__`` is its row number as Excel
shows it, so an error points at the cell a user opens.
The header is the first row with two or more cells filled; rows above it that fill one cell
only (a merged title, an export note) and blank rows are skipped, as are columns without a
header name and cells right of the header.

Values keep their type, so each command reads them as it reads Parquet: dates and times are
``datetime`` (a time column takes them as they are), numbers are ``int`` when whole (Excel
stores every number as a float, and an id of 1 must not be ``"1.0"``) and ``float`` otherwise,
an empty cell is ``""``. Numbers are :class:`~tunesmith.data.times.WorkbookInt` and
``WorkbookFloat``, an ``int`` and a ``float`` that the time parser reads as Excel serial days
in the workbook's date system (a date column in General format holds 45231.5, not a Unix
time). Formulas are read as the value Excel saved with them; a formula saved without one (a
workbook written by a program that does not calculate) and an error cell (``#DIV/0!``) are a
``DataError`` at their cell rather than an empty or made-up value (:class:`BadCell` in the
row, with ``strict=False``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.file_errors import read_failure
from tunesmith.data.times import WorkbookFloat, WorkbookInt
from tunesmith.errors import DataError

#: Workbook suffixes read by :func:`read_xlsx` (``.xlsm`` is the same format with macros,
#: which are never run).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: Spreadsheet formats that are not read, and what to do instead.
REFUSED_SPREADSHEETS = {
    ".xls": "the old Excel format (.xls)",
    ".xlsb": "Excel's binary format (.xlsb)",
    ".ods": "an OpenDocument spreadsheet (.ods)",
}
#: ``book.xlsx#Sheet name``: the workbook, then a sheet (Excel allows ``#`` in a sheet name).
_SHEET = re.compile(r"^(.*?\.(?:xlsx|xlsm))#(.*)$", re.IGNORECASE | re.DOTALL)
#: The first bytes of an OLE2 file: an old .xls workbook, or a password-protected .xlsx.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Rows scanned for the header (title rows above it are few).
_HEADER_SCAN = 20
#: Whole floats below this are integers exactly; above it Excel itself shows rounded digits.
_EXACT_INT = 2**53


def split_sheet(path: str | Path) -> tuple[Path, str | None]:
    """``(workbook file, sheet name or None)`` of ``book.xlsx#Sheet``; any other path (and a
    file whose name really holds ``.xlsx#``) is ``(path, None)``."""
    text = str(path)
    match = _SHEET.match(text)
    if match is None or Path(text).exists():
        return Path(path), None
    return Path(match.group(1)), match.group(2)


def data_file(path: str | Path) -> Path:
    """The file on disk that a data path names: ``book.xlsx`` for ``book.xlsx#Sheet 2``."""
    return split_sheet(path)[0]


def refuse_spreadsheet(path: Path) -> Iterator[dict[str, Any]]:
    """The reader of spreadsheet formats that are not read: one line saying to save as .xlsx."""
    what = REFUSED_SPREADSHEETS.get(Path(path).suffix.lower(), "this spreadsheet format")
    raise DataError(
        f"{what} is not read; open it in Excel or LibreOffice and save it as an Excel "
        "Workbook (.xlsx), or as CSV UTF-8",
        path=path,
    )
    yield {}  # pragma: no cover - a generator, like every reader


def column_letter(index: int) -> str:
    """Excel's name of the 1-based column ``index``: 1 is A, 27 is AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass
class Sheet:
    """One worksheet read as a table: ``rows`` yields ``(Excel row number, {column: value})``."""

    shown: str  # how errors name it: the file, with ``#sheet`` when the workbook has several
    header_row: int  # 1 when the sheet is empty
    columns: list[tuple[str, str]]  # (Excel's letter, header name), in order
    rows: Iterator[tuple[int, dict[str, Any]]]
    name: str = ""  # the sheet's name in the workbook


@dataclass(frozen=True)
class BadCell:
    """A cell that cannot be read (an error value, a formula saved without its value), kept in
    its row by ``read_sheet(..., strict=False)``; ``problem`` is the one-line reason."""

    problem: str


def read_sheet(path: str | Path, *, strict: bool = True) -> Sheet:
    """A worksheet under its header (see the module's docstring); ``path`` may name a sheet
    (``book.xlsx#Sheet 2``). Errors name the file, the Excel row and the column.

    ``strict=False``: a cell that cannot be read is a :class:`BadCell` in its row instead of a
    ``DataError``, for a reader that skips bad rows, or ignores columns it does not use."""
    file, sheet = split_sheet(path)
    with _workbook(file, data_only=True) as book:
        name, shown = _pick_sheet(book, file, sheet)
        grid, has_empty = _cells(book[name], shown, _date1904(book))
    # An empty cell may be a formula saved without its value: only the formulas tell.
    unsaved = _unsaved_formulas(file, name, grid) if has_empty else set()
    header_at = _header_row(grid)
    if header_at is None:
        return Sheet(shown, 1, [], iter(()))
    number, cells = grid[header_at]
    named = [(i, column) for i, value in enumerate(cells) if (column := _header_name(value))]
    columns = [(column_letter(i + 1), column) for i, column in named]
    rows = _rows(grid[header_at + 1 :], named, unsaved, shown, strict)
    return Sheet(shown, number, columns, rows, name)


def _date1904(book: Any) -> bool:
    """Whether the workbook counts its dates from 1904 (early Mac Excel's date system)."""
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    return getattr(book, "epoch", None) == CALENDAR_MAC_1904


def check_sheet(path: str | Path) -> str:
    """The name of the sheet ``path`` names (``book.xlsx#Sheet``, else the first shown); a
    file that is no readable workbook, or an unknown sheet, is one DataError. Reads no cells."""
    file, sheet = split_sheet(path)
    with _workbook(file, data_only=True) as book:
        return _pick_sheet(book, file, sheet)[0]


def sheet_names(path: str | Path) -> tuple[str, list[str]]:
    """``(the sheet path names, every worksheet's name)`` of a workbook, for a message that
    says which sheet was read and which others there are. Reads no cells."""
    file, sheet = split_sheet(path)
    with _workbook(file, data_only=True) as book:
        return _pick_sheet(book, file, sheet)[0], [ws.title for ws in book.worksheets]


def _rows(
    grid: list[tuple[int, list[Any]]],
    named: list[tuple[int, str]],
    unsaved: set[tuple[int, int]],
    shown: str,
    strict: bool = True,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows below the header that are not blank, by header name; a formula without its
    value or an error cell in a named column is a DataError at its cell (``strict``) or a
    :class:`BadCell`."""
    for number, cells in grid:
        if _blank(cells) and not any((number, i) in unsaved for i, _ in named):
            continue
        row: dict[str, Any] = {}
        for index, column in named:
            value = cells[index] if index < len(cells) else None
            where = {"path": shown, "row": number, "column": column}
            cell = f"cell {column_letter(index + 1)}{number}"
            problem = None
            if (number, index) in unsaved:
                problem = (
                    f"{cell} holds a formula saved without its value (the workbook was written "
                    "by a program that does not calculate); open it in Excel or LibreOffice "
                    "and save it again"
                )
            elif isinstance(value, _ErrorCell):
                problem = f"{cell} holds the Excel error {value}; fix the formula or clear the cell"
            if problem is not None:
                if strict:
                    raise DataError(problem, **where)
                value = BadCell(problem)
            row[column] = "" if value is None else value
        yield number, row


class _ErrorCell(str):
    """An error value (``#DIV/0!``, ``#REF!``): refused where a column is read, never text."""


class _workbook:  # noqa: N801 - used as a context manager, like open()
    """A read-only workbook, closed on exit; a file openpyxl cannot read is one DataError."""

    def __init__(self, file: Path, *, data_only: bool) -> None:
        self.file = file
        self.data_only = data_only
        self.book: Any = None

    def __enter__(self) -> Any:
        import zipfile

        from openpyxl import load_workbook

        try:
            with self.file.open("rb") as handle:
                start = handle.read(len(_OLE2))
        except OSError as exc:
            raise read_failure(exc, self.file) from None
        if start == _OLE2:
            raise DataError(
                "this is an old-format .xls workbook or a password-protected one; save it "
                "from Excel or LibreOffice as an Excel Workbook (.xlsx) without a password",
                path=self.file,
            )
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles, validations and extensions it drops; data is kept.
                warnings.simplefilter("ignore")
                self.book = load_workbook(
                    self.file, read_only=True, data_only=self.data_only, keep_links=False
                )
        except MemoryError:
            raise
        except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:  # the machine's, not the file's
                raise read_failure(exc, self.file) from None
            raise DataError(
                f"not a readable Excel workbook ({exc}); save it from Excel as .xlsx",
                path=self.file,
            ) from None
        except Exception as exc:  # openpyxl raises its own types for damaged parts
            raise DataError(f"cannot read the workbook: {exc}", path=self.file) from None
        return self.book

    def __exit__(self, *exc: object) -> None:
        if self.book is not None:
            self.book.close()


def _pick_sheet(book: Any, file: Path, sheet: str | None) -> tuple[str, str]:
    """``(sheet name, how errors name the file)``: the asked sheet (matched case-blind, as
    Excel does) or the first; the name is in messages when the workbook has several sheets."""
    names = [ws.title for ws in book.worksheets]  # not chart sheets: they hold no cells
    if not names:
        raise DataError("the workbook has no worksheets", path=file)
    if sheet is None:
        # The first tab Excel shows: a hidden sheet first (a lookup table, an export's
        # settings) is not the data a user sees when opening the workbook.
        shown_tabs = [ws.title for ws in book.worksheets if ws.sheet_state == "visible"]
        name = (shown_tabs or names)[0]
    else:
        name = next((n for n in names if n == sheet), None) or next(
            (n for n in names if n.casefold() == sheet.casefold()), None
        )
        if name is None:
            listed = ", ".join(f"'{n}'" for n in names)
            raise DataError(f"no sheet '{sheet}'; the sheets are: {listed}", path=file)
    shown = f"{file}#{name}" if sheet is not None or len(names) > 1 else str(file)
    return name, shown


def _cells(
    sheet: Any, shown: str, date1904: bool = False
) -> tuple[list[tuple[int, list[Any]]], bool]:
    """Every row as ``(Excel row number, values)`` without its trailing empty cells, and
    whether any cell was empty (a formula saved without its value reads as one)."""
    # The stored size may be wrong (some writers leave it out or stale): read what is there.
    sheet.reset_dimensions()
    grid: list[tuple[int, list[Any]]] = []
    has_empty = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a date out of Excel's range: an error cell, kept
        try:
            for number, cells in enumerate(sheet.iter_rows(min_row=1, min_col=1), start=1):
                values = [_value(cell, date1904) for cell in cells]
                has_empty = has_empty or None in values
                while values and values[-1] is None:
                    values.pop()
                grid.append((number, values))
        except MemoryError:
            raise
        except Exception as exc:  # a damaged sheet: openpyxl raises ValueError, KeyError, ...
            if isinstance(exc, OSError) and exc.errno is not None:  # an I/O error, not damage
                raise read_failure(exc, shown) from None
            after = f" after row {grid[-1][0]}" if grid else ""
            raise DataError(
                f"cannot read the sheet{after} (a damaged workbook?): {exc}", path=shown
            ) from None
    return grid, has_empty


class _Int1904(WorkbookInt):
    date1904 = True


class _Float1904(WorkbookFloat):
    date1904 = True


def _value(cell: Any, date1904: bool = False) -> Any:
    """A cell's value as a row holds it: a number as a workbook number (an int when whole),
    an error as :class:`_ErrorCell`."""
    value = getattr(cell, "value", None)
    kind = getattr(cell, "data_type", None)
    if value is None and kind == "str":  # a formula whose saved value is empty text (="")
        return ""
    if kind == "e":
        return _ErrorCell(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int) or (value.is_integer() and abs(value) < _EXACT_INT):
        return (_Int1904 if date1904 else WorkbookInt)(value)
    return (_Float1904 if date1904 else WorkbookFloat)(value)


def _unsaved_formulas(
    file: Path, name: str, grid: list[tuple[int, list[Any]]]
) -> set[tuple[int, int]]:
    """``(row number, column index)`` of each formula saved without its value: read with
    ``data_only`` it is an empty cell, and a computed column would silently be empty."""
    saved = dict(grid)
    found: set[tuple[int, int]] = set()
    with _workbook(file, data_only=False) as book:
        sheet = book[name]
        sheet.reset_dimensions()
        for number, cells in enumerate(sheet.iter_rows(min_row=1, min_col=1), start=1):
            values = saved.get(number, [])
            for index, cell in enumerate(cells):
                if cell.data_type == "f" and (index >= len(values) or values[index] is None):
                    found.add((number, index))
    return found


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _blank(cells: list[Any]) -> bool:
    return not any(_filled(value) for value in cells)


def _header_row(grid: list[tuple[int, list[Any]]]) -> int | None:
    """The index in ``grid`` of the header: the first row with two or more cells filled among
    the first rows that are not blank, else (a one-column table) the first that is not blank."""
    rows = [i for i, (_, cells) in enumerate(grid) if not _blank(cells)]
    if not rows:
        return None
    for i in rows[:_HEADER_SCAN]:
        if sum(_filled(value) for value in grid[i][1]) >= 2:
            return i
    return rows[0]


def _header_name(value: Any) -> str:
    """A header cell as a column name: text stripped; a number as Excel shows it (2024)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()
