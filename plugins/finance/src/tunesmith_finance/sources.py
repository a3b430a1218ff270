"""Records from JSONL and CSV input, read from a byte offset so that ingest can resume.

Each record comes with its line number and the byte offset just after it; ingest stores that
offset with each committed batch. With ``follow=True`` (a watched file that may still grow), a
last line without its newline, or a CSV record whose quotes are still open, is left for later.

An Excel workbook (``book.xlsx``, ``book.xlsx#Sheet``) has no byte offsets (it is a zip that
Excel rewrites whole on each save): :func:`read_workbook` gives each row its Excel row number
as its "offset" and a **mark**, the SHA-256 of the header and every row read up to it, so that
a resumed ingest can tell rows appended below from rows edited, inserted, deleted or sorted
above where it stopped.

Encodings are checked as the core's readers check them (:mod:`tunesmith.data.readers`), without
decoding a file twice: a UTF-16 or UTF-32 file is refused at its start, before anything is
stored; a byte that is not UTF-8, or a NUL, in a record skips that record, naming its line and
column. The machine failing while a file is read (an I/O error) is the ``OSError`` with the
file named (:func:`~tunesmith.data.file_errors.read_failure`), not a row error.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tunesmith.data.excel import EXCEL_SUFFIXES, REFUSED_SPREADSHEETS, data_file
from tunesmith.data.file_errors import read_failure
from tunesmith.data.limits import MAX_FIELD_CHARS
from tunesmith.data.readers import decode_utf8, nul_problem, utf16_problem
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
#: Bytes of a file's start looked at for UTF-16 or UTF-32 (as many as the core's readers sniff).
_HEAD_BYTES = 8192
#: What a byte that is not UTF-8 becomes when decoded with ``surrogateescape``.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


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
            f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv or .xlsx/.xlsm"
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
    try:
        with file.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:  # not the user's to read (exit 2), or the machine failing (exit 1)
        raise read_failure(exc, file) from None
    check_encoding(head, file)
    return kind


def check_encoding(head: bytes, name: str | Path) -> None:
    """Refuse a file whose first bytes ``head`` are UTF-16 or UTF-32 (Excel's "Unicode Text"),
    in the core's words with the ``iconv`` command that converts it: read line by line as
    UTF-8, each of its rows would be skipped as unreadable (or its header name no column)."""
    if problem := utf16_problem(head):
        raise DataError(problem, path=name)


def iter_jsonl(
    handle: IO[bytes],
    *,
    offset: int = 0,
    line: int = 0,
    follow: bool = False,
    name: str | None = None,
) -> Iterator[RawRow]:
    """JSON objects, one a line, from ``offset`` (``line`` lines already read before it).

    A line longer than :data:`MAX_RECORD_BYTES` is a row error, its rest read in chunks and
    dropped, so that one line without newlines cannot fill the memory. ``name``: the file in
    messages (by default the handle's name). Read from the start, a UTF-16 or UTF-32 file is
    a ``DataError`` at its first line; a failed read is :func:`read_failure`'s."""
    name = name or _handle_name(handle)
    try:
        yield from _jsonl_rows(handle, offset, line, follow, name)
    except OSError as exc:
        raise read_failure(exc, name) from None


def _handle_name(handle: IO[bytes]) -> str:
    """How messages name the file behind ``handle``: its path, ``<stdin>``, else ``<input>``."""
    name = getattr(handle, "name", None)
    return name if isinstance(name, str) and name else "<input>"


def _jsonl_rows(
    handle: IO[bytes], position: int, line: int, follow: bool, name: str
) -> Iterator[RawRow]:
    while True:
        raw = handle.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        if not position:
            check_encoding(raw, name)  # standard input has had no check_file
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
        start = position
        position += len(raw)
        line += 1
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            # utf-8-sig: a file saved with a byte-order mark would otherwise lose its first row.
            value = json.loads(stripped.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            lead = len(raw) - len(raw.lstrip())  # the error counts from the stripped line
            yield RawRow(line, position, None, _json_bad_byte(stripped, exc, start + lead))
            continue
        except json.JSONDecodeError as exc:
            problem = _json_nul(stripped) if b"\x00" in stripped else None
            yield RawRow(
                line, position, None, problem or f"malformed JSON ({exc.msg}, column {exc.colno})"
            )
            continue
        if not isinstance(value, dict):
            yield RawRow(
                line, position, None, f"expected a JSON object, got {type(value).__name__}"
            )
            continue
        yield RawRow(line, position, value)


def _row_problem(reason: str, column: str | None) -> str:
    """A skipped row's reason naming its column, in the form of every other row error
    (``column 'text': ...``)."""
    from tunesmith_finance.documents import RowError

    return str(RowError(reason, column))


def _bad_byte(raw: bytes, exc: UnicodeDecodeError, start: int) -> str:
    """The core's words for a byte that is not UTF-8, at its offset in the file (the record
    ``raw`` starts at offset ``start``)."""
    bad = raw[exc.start : exc.start + 1].hex()
    return (
        f"not UTF-8 (byte 0x{bad} at offset {start + exc.start} of the file); re-save the file "
        "as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
    )


def _json_bad_byte(data: bytes, exc: UnicodeDecodeError, start: int) -> str:
    """Why a JSON line is not UTF-8, naming the field holding the bad byte when it parses."""
    try:
        value = json.loads(data.decode("utf-8-sig", "surrogateescape"))
    except ValueError:
        value = None
    column = _field_with_bad_byte(value) if isinstance(value, dict) else None
    return _row_problem(_bad_byte(data, exc, start), column)


def _json_nul(stripped: bytes) -> str | None:
    """The core's NUL problem for a JSON line that is malformed only by a raw NUL in a string
    (JSON allows no control character there); None when it is malformed otherwise."""
    try:
        value = json.loads(stripped.decode("utf-8-sig", "surrogateescape"), strict=False)
    except ValueError:
        return None
    return _value_nul(value) if isinstance(value, dict) else None


def _value_nul(value: dict[str, Any]) -> str | None:
    """The core's NUL problem (:func:`~tunesmith.data.readers.nul_problem`) for the first
    string field of a JSON object holding a NUL, with its field as the column."""
    names = [key for key, item in value.items() if isinstance(item, str)]
    found = nul_problem([value[key] for key in names], names)
    return _row_problem(*found) if found else None


def _field_with_bad_byte(value: dict[str, Any]) -> str | None:
    """The first field of a JSON object decoded with ``surrogateescape`` whose text (a string,
    or one in a list of tickers or topics) holds a byte that is not UTF-8."""
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if any(isinstance(text, str) and _ESCAPED_BYTE.search(text) for text in items):
            return key
    return None


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


def _parse_csv(data: bytes, errors: str = "strict") -> list[str]:
    # Raised, never lowered: the csv module's default (131,072) is below the field limit.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors))))
    return rows[0] if rows else []


def read_header(
    handle: IO[bytes], *, name: str = "<csv>", follow: bool = False
) -> tuple[list[str], int, int]:
    """The CSV header at the start of ``handle``: field names, bytes and lines it takes.

    ``([], 0, 0)`` when there is none yet (an empty file, or in follow mode a header line still
    being written)."""
    try:
        record = _csv_record(handle, follow=follow)
    except OSError as exc:
        raise read_failure(exc, name) from None
    if record is None:
        return [], 0, 0
    check_encoding(record.data, name)  # standard input has had no check_file
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
    except UnicodeDecodeError:
        decode_utf8(data, name)  # the core's line: the byte, its offset and the iconv command
        raise
    except csv.Error as exc:
        raise DataError(f"unreadable CSV header: {exc}", path=name, row=1) from None
    return names, record.size, lines


def iter_csv(
    handle: IO[bytes],
    header: list[str],
    *,
    offset: int,
    line: int,
    follow: bool = False,
    name: str | None = None,
) -> Iterator[RawRow]:
    """CSV records after the header, from ``offset``; quoted fields may span lines. ``name``:
    the file in messages (by default the handle's name); a failed read is
    :func:`read_failure`'s."""
    name = name or _handle_name(handle)
    try:
        yield from _csv_rows(handle, header, offset, line, follow)
    except OSError as exc:
        raise read_failure(exc, name) from None


def _csv_rows(
    handle: IO[bytes], header: list[str], position: int, line: int, follow: bool
) -> Iterator[RawRow]:
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
        except UnicodeDecodeError as exc:
            problem = _csv_bad_byte(data, exc, position - record.size, header)
            yield RawRow(first, position, None, problem)
            continue
        except csv.Error as exc:
            yield RawRow(first, position, None, f"malformed CSV ({exc})")
            continue
        if len(fields) != len(header):
            yield RawRow(first, position, None, f"expected {len(header)} fields, got {len(fields)}")
            continue
        # One byte search over the record; its cells are searched only when that finds a NUL.
        if b"\x00" in data and (found := nul_problem(fields, header)):
            yield RawRow(first, position, None, _row_problem(*found))
            continue
        yield RawRow(first, position, dict(zip(header, fields, strict=True)))


def _csv_bad_byte(data: bytes, exc: UnicodeDecodeError, start: int, header: list[str]) -> str:
    """Why a CSV record is not UTF-8, naming the header's column of the cell holding the bad
    byte (as the core's readers do) when the record parses."""
    try:
        fields = _parse_csv(data, errors="surrogateescape")
    except csv.Error:
        fields = []
    index = next((i for i, f in enumerate(fields) if _ESCAPED_BYTE.search(f)), len(header))
    column = header[index] if index < len(header) else None
    return _row_problem(_bad_byte(data, exc, start), column)


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
    sheet = read_sheet(path, strict=False, prefer=used)
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
