"""Excel workbooks (``.xlsx``, ``.xlsm``) read as rows, like a CSV file with a header.

``book.xlsx`` reads the first worksheet Excel shows (hidden sheets are read only by name);
``book.xlsx#Sheet name`` reads that one. Each row's ``__row__`` is its row number as Excel
shows it, so an error points at the cell a user opens.
The header is the first row with two or more cells filled; rows above it that fill one cell
only (a merged title, an export note) and blank rows are skipped, as are columns without a
header name and cells right of the header. A row naming a column the command reads
(:func:`expect_columns`) is preferred to a title row of two cells above it.

The sheet's XML is read row by row as rows are consumed, after the zip's stated sizes are
checked (:func:`_check_parts`: a zip bomb is refused before any XML is read); a row or cell past
Excel's own limits is a crafted file. A number stored as text is a
:class:`~tunesmith.data.times.WorkbookText`, which a time column refuses where it could be
serial days as well as Unix seconds.

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

import itertools
import re
import warnings
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.file_errors import read_failure
from tunesmith.data.times import WorkbookFloat, WorkbookInt, WorkbookText
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
#: Excel's last row and column (XFD): a row or cell past them is a crafted file.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: Most bytes one part of a workbook (a sheet's XML, its shared strings) may unpack to. Excel's
#: fullest sheets (a million rows of a dozen columns) stay below it; a zip bomb does not.
MAX_PART_BYTES = 2 << 30
#: Most times a part may unpack to its packed size once above ``_RATIO_FROM`` bytes: sheets
#: that Excel and openpyxl write pack 5 to 30 times (a million empty formatted rows about
#: 100), deflate's most is about 1,030 (what a zip bomb uses).
MAX_PART_RATIO = 250
_RATIO_FROM = 64 << 20
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


def read_sheet(path: str | Path, *, strict: bool = True, prefer: Collection[str] = ()) -> Sheet:
    """A worksheet under its header (see the module's docstring); ``path`` may name a sheet
    (``book.xlsx#Sheet 2``). Errors name the file, the Excel row and the column.

    The rows are read as they are consumed (the workbook stays open until ``rows`` ends), so
    memory holds the rows a caller keeps, never the sheet's XML. ``prefer``: column names the
    caller reads (also taken from :func:`expect_columns`); a row holding one of them is the
    header rather than a title row of two cells above it.

    ``strict=False``: a cell that cannot be read is a :class:`BadCell` in its row instead of a
    ``DataError``, for a reader that skips bad rows, or ignores columns it does not use."""
    file, sheet = split_sheet(path)
    opened = _workbook(file, data_only=True)
    book = opened.__enter__()
    try:
        name, shown = _pick_sheet(book, file, sheet)
        grid = _stream(book, name, shown, _date1904(book))
        found = _find_header(grid, {*prefer, *_EXPECTED.get()})
    except BaseException:
        opened.__exit__()
        raise
    if found is None:
        opened.__exit__()
        return Sheet(shown, 1, [], iter(()), name)
    (number, cells), rest = found
    named = [(i, column) for i, value in enumerate(cells) if (column := _header_name(value))]
    columns = [(column_letter(i + 1), column) for i, column in named]
    rows = _rows(rest, named, shown, strict, opened)
    return Sheet(shown, number, columns, rows, name)


#: Column names the command being run reads (:func:`expect_columns`), for the header search.
_EXPECTED: ContextVar[tuple[str, ...]] = ContextVar("tunesmith_excel_expected", default=())


@contextmanager
def expect_columns(names: Iterable[str | None]) -> Iterator[None]:
    """Within this block, a workbook's header is preferably the row holding one of ``names``
    (``--text-col``, ``--label-col``): the data readers take a path only, not the columns."""
    token = _EXPECTED.set(tuple(name for name in names if name))
    try:
        yield
    finally:
        _EXPECTED.reset(token)


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
    grid: Iterator[tuple[int, list[Any]]],
    named: list[tuple[int, str]],
    shown: str,
    strict: bool,
    opened: _workbook,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows below the header that are not blank, by header name; a formula without its
    value or an error cell in a named column is a DataError at its cell (``strict``) or a
    :class:`BadCell`. The workbook is closed when the rows end (or are dropped)."""
    try:
        for number, cells in grid:
            if _blank(cells) and not any(i < len(cells) and cells[i] is _UNSAVED for i, _ in named):
                continue
            row: dict[str, Any] = {}
            for index, column in named:
                value = cells[index] if index < len(cells) else None
                cell = f"cell {column_letter(index + 1)}{number}"
                problem = None
                if value is _UNSAVED:
                    problem = (
                        f"{cell} holds a formula saved without its value (the workbook was "
                        "written by a program that does not calculate); open it in Excel or "
                        "LibreOffice and save it again"
                    )
                elif isinstance(value, _ErrorCell):
                    problem = (
                        f"{cell} holds the Excel error {value}; fix the formula or clear the cell"
                    )
                if problem is not None:
                    if strict:
                        raise DataError(problem, path=shown, row=number, column=column)
                    value = BadCell(problem)
                row[column] = "" if value is None else value
            yield number, row
    finally:
        opened.__exit__()


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
        _check_parts(self.file)
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
            self.book = None


def _check_parts(file: Path) -> None:
    """Refuse, before any XML is read, a workbook whose parts unpack to more than
    :data:`MAX_PART_BYTES` or expand suspiciously (a zip bomb): the sizes are the zip's own,
    and Python's zip reader never gives more bytes than a part's stated size."""
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return  # not a zip: load_workbook says so in its words
    except OSError as exc:
        raise read_failure(exc, file) from None
    for part in parts:
        size, packed = part.file_size, max(part.compress_size, 1)
        if size > MAX_PART_BYTES or (size > _RATIO_FROM and size / packed > MAX_PART_RATIO):
            raise DataError(
                f"the workbook's part {part.filename} unpacks to {size / 2**20:,.0f} MiB "
                f"({size / packed:,.0f} times its packed size): a zip bomb, or a sheet of "
                "millions of formatted empty cells; parts up to "
                f"{MAX_PART_BYTES / 2**30:.0f} GiB expanding at most {MAX_PART_RATIO} times "
                "are read (copy the data to a new workbook, or save it as CSV UTF-8)",
                path=file,
            )


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


def _stream(
    book: Any, name: str, shown: str, date1904: bool = False
) -> Iterator[tuple[int, list[Any]]]:
    """Each row of sheet ``name`` as ``(Excel row number, values)`` without its trailing empty
    cells, read from the XML as it is consumed; a damaged sheet, or a row or column past
    Excel's own limits (a crafted file), is one DataError."""
    parser = _sheet_parser(book, name)
    rows = parser.rows()
    last = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a date out of Excel's range: an error cell
                found = next(rows, None)
        except MemoryError:
            raise
        except DataError:
            raise
        except Exception as exc:  # a damaged sheet: ElementTree, openpyxl raise several types
            if isinstance(exc, OSError) and exc.errno is not None:  # an I/O error, not damage
                raise read_failure(exc, shown) from None
            after = f" after row {last}" if last else ""
            raise DataError(
                f"cannot read the sheet{after} (a damaged workbook?): {exc}", path=shown
            ) from None
        if found is None:
            return
        number, cells = found
        if not 1 <= number <= MAX_ROWS:
            raise DataError(
                f"the sheet has a row numbered {number}, past Excel's last row "
                f"({MAX_ROWS:,}); a damaged or crafted workbook",
                path=shown,
            )
        last = number
        values: list[Any] = []
        for cell in cells:
            column = cell["column"]
            if column > MAX_COLUMNS or column < 1:
                raise DataError(
                    f"row {number} has a cell in column {column:,}, past Excel's last column "
                    f"({MAX_COLUMNS:,}, XFD); a damaged or crafted workbook",
                    path=shown,
                )
            if column > len(values):
                values.extend([None] * (column - len(values)))
            values[column - 1] = _value(cell, date1904)
        while values and values[-1] is None:
            values.pop()
        yield number, values


def _sheet_parser(book: Any, name: str) -> Any:
    """A parser of sheet ``name``'s XML that yields its rows one at a time (openpyxl's own,
    told the workbook's shared strings, date styles and date system)."""
    from openpyxl.worksheet._reader import (
        FORMULA_TAG,
        ROW_TAG,
        WorkSheetParser,
    )
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse

    inline_tag = f"{{{SHEET_MAIN_NS}}}is"
    text_tag = f"{{{SHEET_MAIN_NS}}}t"
    run_tag = f"{{{SHEET_MAIN_NS}}}r"

    class Parser(WorkSheetParser):  # type: ignore[misc]
        def rows(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
            """Only the rows, each emptied once read (openpyxl's ``parse`` also builds the
            sheet's formatting, which is not data)."""
            with self.source:
                for _, element in iterparse(self.source):
                    if element.tag == ROW_TAG:
                        row = self.parse_row(element)
                        element.clear()
                        yield row

        def parse_cell(self, element: Any) -> dict[str, Any]:
            inline = element.get("t") == "inlineStr"
            if inline:
                # openpyxl builds a rich-text object per inline string (what openpyxl's own
                # write-only mode writes): a third of the reading time; the text is enough.
                child = element.find(inline_tag)
                text = None
                if child is not None:
                    runs = [child.findtext(text_tag)] + [
                        run.findtext(text_tag) for run in child.iter(run_tag)
                    ]
                    text = "".join(run for run in runs if run)
                element.set("t", "n")
                for part in list(element):
                    element.remove(part)
            cell = super().parse_cell(element)
            if inline:
                cell["value"], cell["data_type"] = text, "s"
            elif cell["value"] is None and element.find(FORMULA_TAG) is not None:
                cell["data_type"] = "f"  # a formula saved without its value
            return cell

    sheet = book[name]
    return Parser(
        sheet._get_source(),
        sheet._shared_strings,
        data_only=True,
        epoch=book.epoch,
        date_formats=book._date_formats,
        timedelta_formats=book._timedelta_formats,
    )


class _Int1904(WorkbookInt):
    date1904 = True


class _Float1904(WorkbookFloat):
    date1904 = True


class _Text1904(WorkbookText):
    date1904 = True


class _Unsaved:
    """A formula saved without its value: read with ``data_only`` it would be an empty cell,
    and a computed column would silently be empty."""

    def __repr__(self) -> str:
        return "<formula without its value>"


_UNSAVED = _Unsaved()
#: A number written as text: ``45231.5``, ``1700000000``, ``-3``, ``1e9``.
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _value(cell: dict[str, Any], date1904: bool = False) -> Any:
    """A cell's value as a row holds it: a number as a workbook number (an int when whole),
    a number stored as text as :class:`WorkbookText`, an error as :class:`_ErrorCell`."""
    value = cell["value"]
    kind = cell["data_type"]
    if kind == "f":
        return _UNSAVED
    if value is None and kind == "s":  # a formula whose saved value is empty text (="")
        return ""
    if kind == "e":
        return _ErrorCell(value)
    if isinstance(value, str):
        if _NUMERIC_TEXT.fullmatch(value):
            return (_Text1904 if date1904 else WorkbookText)(value)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int) or (value.is_integer() and abs(value) < _EXACT_INT):
        return (_Int1904 if date1904 else WorkbookInt)(value)
    return (_Float1904 if date1904 else WorkbookFloat)(value)


def _filled(value: Any) -> bool:
    return (
        value is not None
        and value is not _UNSAVED
        and not (isinstance(value, str) and not value.strip())
    )


def _blank(cells: list[Any]) -> bool:
    return not any(_filled(value) for value in cells)


def _find_header(
    grid: Iterator[tuple[int, list[Any]]], prefer: Collection[str]
) -> tuple[tuple[int, list[Any]], Iterator[tuple[int, list[Any]]]] | None:
    """``(header row, the rows after it)``, or None for a blank sheet. The header is the first
    row with two or more cells filled among the first rows that are not blank, else (a
    one-column table) the first that is not blank; but when ``prefer`` names columns and that
    row holds none of them, the first of those rows that holds one (the row under a title
    of two cells, "Q3 report" | "Bank X"). Only the first rows are held to decide."""
    held: list[tuple[int, list[Any]]] = []  # the rows read so far, blank ones too
    seen = 0
    wide: int | None = None  # index in held of the first row with two cells filled
    for number, cells in grid:
        held.append((number, cells))
        if _blank(cells):
            continue
        seen += 1
        filled = sum(_filled(value) for value in cells)
        named = prefer and any(_header_name(value) in prefer for value in cells)
        if named and (filled >= 2 or wide is None):
            return held[-1], grid
        if filled >= 2 and wide is None:
            wide = len(held) - 1
            if not prefer:
                break
        if seen >= _HEADER_SCAN:
            break
    firsts = [i for i, (_, cells) in enumerate(held) if not _blank(cells)]
    if not firsts:
        return None
    at = wide if wide is not None else firsts[0]
    return held[at], itertools.chain(held[at + 1 :], grid)


def _header_name(value: Any) -> str:
    """A header cell as a column name: text stripped; a number as Excel shows it (2024)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()
