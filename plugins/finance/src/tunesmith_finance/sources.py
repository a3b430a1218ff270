"""Records from JSONL and CSV input, read from a byte offset so that ingest can resume.

Each record comes with its line number and the byte offset just after it; ingest stores that
offset with each committed batch. With ``follow=True`` (a watched file that may still grow), a
last line without its newline, or a CSV record whose quotes are still open, is left for later.

An Excel workbook (``book.xlsx``, ``book.xlsx#Sheet``) has no byte offsets (it is a zip that
Excel rewrites whole on each save): :func:`read_workbook` gives each row its Excel row number
as its "offset" and a **mark**, the SHA-256 of the header and every row read up to it, so that
a resumed ingest can tell rows appended below from rows edited, inserted, deleted or sorted
above where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tunesmith.data.excel import EXCEL_SUFFIXES, REFUSED_SPREADSHEETS, data_file
from tunesmith.data.limits import MAX_FIELD_CHARS
from tunesmith.errors import DataError, UserInputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: Workbooks: read whole (not followed by ``watch``), resumed at an Excel row.
WORKBOOK = "xlsx"
#: Longest record read (bytes): the longest field at UTF-8's 4 bytes a character, and 64 KiB for
#: the other fields. A line without its newline, or a CSV quote never closed, is otherwise read
#: whole into memory; past this it is skipped as one row error, read in chunks to its end.
MAX_RECORD_BYTES = 4 * MAX_FIELD_CHARS + (1 << 16)
#: Bytes read at a time while skipping the rest of an oversized record.
_SKIP_CHUNK = 1 << 16


@dataclass
class RawRow:
    """One record: its first line, the offset after it, and its fields or why it is unreadable."""

    line: int
    end: int
    value: dict[str, Any] | None
    error: str | None = None
    mark: str | None = None  # a workbook row's: the hash of the rows up to it (module doc)


def format_of(path: str | Path) -> str:
    """``jsonl``, ``csv`` or ``xlsx`` (:data:`WORKBOOK`) from a file's suffix; a workbook's
    sheet (``book.xlsx#Sheet 2``) is not part of it."""
    suffix = data_file(path).suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return WORKBOOK
    if suffix in REFUSED_SPREADSHEETS:
        raise UserInputError(
            f"{path}: {REFUSED_SPREADSHEETS[suffix]} is not read; save it from Excel or "
            "LibreOffice as an Excel Workbook (.xlsx), or as CSV UTF-8"
        )
    if suffix not in FORMATS:
        inner = Path(path).with_suffix("").suffix.lower()
        if suffix in (".gz", ".bz2", ".xz", ".zst") and inner in FORMATS:
            # Compressed files are not read in place (ingest resumes at a byte offset).
            tool = {".gz": "zcat", ".bz2": "bzcat", ".xz": "xzcat", ".zst": "zstdcat"}[suffix]
            fmt = " --format csv" if FORMATS[inner] == "csv" else ""
            raise UserInputError(
                f"{path}: compressed files are not read directly; pipe it in: "
                f"{tool} {path} | tunesmith finance ingest -{fmt} ..."
            )
        raise UserInputError(
            f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv or .xlsx"
        )
    return FORMATS[suffix]


def check_file(path: str | Path, *, empty_ok: bool = False, fmt: str | None = None) -> str:
    """The format of an input file that exists (``jsonl`` or ``csv``); one clear error if not.

    An empty file is refused unless ``empty_ok`` (a watched file may be created empty and
    written later; a file named on the command line is then a mistake). ``fmt``: the format
    when the name does not say it (a rotated ``feed.jsonl.1``)."""
    kind = fmt or format_of(path)
    file = data_file(path) if kind == WORKBOOK else Path(path)
    if not file.is_file():
        raise UserInputError(f"{file}: no such file")
    if not empty_ok and file.stat().st_size == 0:
        raise DataError("empty file; no documents", path=file)
    if kind == WORKBOOK:
        from tunesmith.data.excel import check_sheet

        check_sheet(path)  # an unknown sheet, an .xls renamed: before the model loads
    return kind


def iter_jsonl(
    handle: IO[bytes], *, offset: int = 0, line: int = 0, follow: bool = False
) -> Iterator[RawRow]:
    """JSON objects, one a line, from ``offset`` (``line`` lines already read before it).

    A line longer than :data:`MAX_RECORD_BYTES` is a row error, its rest read in chunks and
    dropped, so that one line without newlines cannot fill the memory."""
    position = offset
    while True:
        raw = handle.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            size = _skip_line(handle, len(raw), follow)
            if size is None:
                return  # follow: the writer has not finished this line yet
            position += size
            line += 1
            yield RawRow(line, position, None, _too_long(size))
            continue
        if follow and not raw.endswith(b"\n"):
            return  # the writer has not finished this line yet
        position += len(raw)
        line += 1
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            # utf-8-sig: a file saved with a byte-order mark would otherwise lose its first row.
            value = json.loads(stripped.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield RawRow(line, position, None, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield RawRow(line, position, None, f"malformed JSON ({exc.msg}, column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield RawRow(
                line, position, None, f"expected a JSON object, got {type(value).__name__}"
            )
            continue
        yield RawRow(line, position, value)


def _too_long(size: int) -> str:
    """The row error of a record of ``size`` bytes, past :data:`MAX_RECORD_BYTES`."""
    return (
        f"record of {size:,} bytes, longer than the {MAX_RECORD_BYTES:,} read (a line without "
        "its newline, or a quote never closed?); skipped"
    )


def _skip_line(handle: IO[bytes], size: int, follow: bool) -> int | None:
    """Read the rest of a line ``size`` bytes into it, in chunks, dropping them: the line's
    whole size; ``None`` in ``follow`` mode when it has no newline yet (it is read again)."""
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            return size
        if not chunk:
            return None if follow else size


_QUOTE, _COMMA = ord('"'), ord(",")
_START, _FIELD, _QUOTED, _AFTER_QUOTE = range(4)


def _quote_open_after(raw: bytes, quoted: bool) -> bool:
    """Whether a quoted field is still open at the end of one physical line.

    Follows the csv module's rules rather than counting quotes: a quote opens a quoted field only
    at the start of a field, so ``27" screen`` in an unquoted field is a plain character and does
    not swallow the lines after it. ``quoted``: the line continues an open quoted field.
    """
    if not quoted and b'"' not in raw:
        return False
    if not quoted:
        raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM is not part of the first field
    return _csv_state(raw, _QUOTED if quoted else _START) == _QUOTED


def _csv_state(raw: bytes, state: int) -> int:
    """The quoting state after ``raw`` (part of a line) read from ``state``."""
    for byte in raw:
        if state == _QUOTED:
            if byte == _QUOTE:
                state = _AFTER_QUOTE
        elif byte == _QUOTE:
            state = _QUOTED if state in (_START, _AFTER_QUOTE) else _FIELD
        elif byte == _COMMA:
            state = _START
        else:
            state = _FIELD
    return state


@dataclass
class _Record:
    """One CSV record's bytes (empty when ``oversized``), size, lines and whether it ended
    inside a quoted field (the file ended first)."""

    data: bytes
    size: int
    lines: int
    complete: bool = True
    oversized: bool = False


def _csv_record(handle: IO[bytes], follow: bool) -> _Record | None:
    """One CSV record: physical lines until no quoted field is open.

    Past :data:`MAX_RECORD_BYTES` the rest of the record is read in chunks and dropped (an
    ``oversized`` record), following its quotes to where it ends so the next record can be read.
    """
    parts: list[bytes] = []
    size = 0
    quoted = False
    while True:
        raw = handle.readline(MAX_RECORD_BYTES + 1 - size)
        if not raw:
            if parts and not follow:
                return _Record(b"".join(parts), size, len(parts), complete=False)
            return None
        if size + len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            return _skip_csv_record(handle, raw, quoted, len(parts), size, follow)
        if follow and not raw.endswith(b"\n"):
            return None
        parts.append(raw)
        size += len(raw)
        quoted = _quote_open_after(raw, quoted)
        if not quoted:
            return _Record(b"".join(parts), size, len(parts))


def _skip_csv_record(
    handle: IO[bytes], raw: bytes, quoted: bool, lines: int, size: int, follow: bool
) -> _Record | None:
    """Read to the end of a record too long to keep, in chunks, following its quotes: ``raw``
    is its last line cut short, after ``lines`` whole lines of ``size`` bytes (``quoted``: one
    of them left a quoted field open). ``None`` in ``follow`` mode when it has not ended yet."""
    first = raw if quoted or lines else raw.removeprefix(b"\xef\xbb\xbf")
    state = _csv_state(first, _QUOTED if quoted else _START)
    size, lines = size + len(raw), lines + 1
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        if not chunk:
            if follow:
                return None
            return _Record(b"", size, lines, complete=state != _QUOTED, oversized=True)
        size += len(chunk)
        state = _csv_state(chunk, state)
        if chunk.endswith(b"\n"):
            if state != _QUOTED:
                return _Record(b"", size, lines, oversized=True)
            lines += 1  # a newline inside a quoted field: the record goes on


def _parse_csv(data: bytes) -> list[str]:
    # Raised, never lowered: the csv module's default (131,072) is below the field limit.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return rows[0] if rows else []


def read_header(
    handle: IO[bytes], *, name: str = "<csv>", follow: bool = False
) -> tuple[list[str], int, int]:
    """The CSV header at the start of ``handle``: field names, bytes and lines it takes.

    ``([], 0, 0)`` when there is none yet (an empty file, or in follow mode a header line still
    being written)."""
    record = _csv_record(handle, follow=follow)
    if record is None:
        return [], 0, 0
    if record.oversized:
        raise DataError(
            f"the header is longer than {MAX_RECORD_BYTES:,} bytes (a line without its "
            "newline, or a quote never closed?)",
            path=name,
            row=1,
        )
    data, lines = record.data, record.lines
    try:
        names = [field.strip() for field in _parse_csv(data)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"unreadable CSV header: {exc}", path=name, row=1) from None
    return names, record.size, lines


def iter_csv(
    handle: IO[bytes],
    header: list[str],
    *,
    offset: int,
    line: int,
    follow: bool = False,
) -> Iterator[RawRow]:
    """CSV records after the header, from ``offset``; quoted fields may span lines."""
    position = offset
    while True:
        record = _csv_record(handle, follow)
        if record is None:
            return
        data = record.data
        first = line + 1
        position += record.size
        line += record.lines
        if record.oversized:
            yield RawRow(first, position, None, _too_long(record.size))
            continue
        if not data.strip():
            continue
        if not record.complete:
            # The csv module would silently close the quotes and keep the rest of the file as
            # one field of this row.
            yield RawRow(first, position, None, "malformed CSV (a quoted field is never closed)")
            continue
        try:
            fields = _parse_csv(data)
        except UnicodeDecodeError:
            yield RawRow(first, position, None, "not UTF-8 text")
            continue
        except csv.Error as exc:
            yield RawRow(first, position, None, f"malformed CSV ({exc})")
            continue
        if len(fields) != len(header):
            yield RawRow(first, position, None, f"expected {len(header)} fields, got {len(fields)}")
            continue
        yield RawRow(first, position, dict(zip(header, fields, strict=True)))


@dataclass
class Workbook:
    """A worksheet read for ingest: ``shown`` names it in messages (``book.xlsx#Sheet`` when
    the workbook has several sheets), ``key`` is its progress record's (the absolute file and
    the sheet's name, however the sheet was asked for), ``header`` its header as stored."""

    shown: str
    key: str
    header: str
    rows: list[RawRow]

    def mark_at(self, line: int) -> str:
        """The mark of the rows up to Excel row ``line`` (of none: the header's)."""
        mark = _first_mark(self.header)
        for row in self.rows:
            if row.line > line:
                break
            mark = row.mark or mark
        return mark


def _first_mark(header: str) -> str:
    import hashlib

    return hashlib.sha256(header.encode("utf-8", "surrogatepass")).hexdigest()


def read_workbook(path: str | Path) -> Workbook:
    """The rows of a worksheet (``book.xlsx``: the first sheet Excel shows) under its header,
    each with its Excel row number and mark. A cell Excel cannot give a value for (``#N/A``, a
    formula never calculated) in a column a document is made of makes its row an unreadable
    one; in another column (a computed one ingest does not read) it is left out. The header's problems are one DataError naming its row."""
    import hashlib

    from tunesmith.data.excel import BadCell, read_sheet
    from tunesmith.data.readers import check_unique_header
    from tunesmith_finance import documents

    used = {*documents.ID_FIELDS, *documents.TIME_FIELDS, *documents.TEXT_FIELDS, "source"}
    used |= {*documents.TOPIC_FIELDS, *documents.TICKER_FIELDS}
    sheet = read_sheet(path, strict=False)
    names = [name for _, name in sheet.columns]
    if not names:
        raise DataError("the sheet is empty; no documents", path=sheet.shown)
    check_unique_header(
        names, sheet.shown, row=sheet.header_row, positions=[c for c, _ in sheet.columns]
    )
    try:
        documents.check_columns(names, sheet.shown)
    except DataError as exc:  # it says row 1, a CSV's header line
        raise DataError(
            exc.message, path=sheet.shown, row=sheet.header_row, column=exc.column
        ) from None
    header = "\x1f".join(names)
    running = hashlib.sha256(header.encode("utf-8", "surrogatepass"))
    key = f"{data_file(path).resolve()}#{sheet.name}"
    rows: list[RawRow] = []
    for number, values in sheet.rows:
        # repr: a type change (the date 2026-11-05 typed over as text) is a change too
        running.update(repr((number, list(values.values()))).encode("utf-8", "surrogatepass"))
        mark = running.copy().hexdigest()
        bad = [v.problem for k, v in values.items() if isinstance(v, BadCell) and k in used]
        if bad:
            rows.append(RawRow(number, number, None, bad[0], mark))
            continue
        value = {k: v for k, v in values.items() if not isinstance(v, BadCell)}
        rows.append(RawRow(number, number, value, None, mark))
    return Workbook(sheet.shown, key, header, rows)
