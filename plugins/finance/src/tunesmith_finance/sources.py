"""Records from JSONL and CSV input, read from a byte offset so that ingest can resume.

Each record comes with its line number and the byte offset just after it; ingest stores that
offset with each committed batch. With ``follow=True`` (a watched file that may still grow), a
last line without its newline, or a CSV record whose quotes are still open, is left for later.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tunesmith.errors import DataError, UserInputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass
class RawRow:
    """One record: its first line, the offset after it, and its fields or why it is unreadable."""

    line: int
    end: int
    value: dict[str, Any] | None
    error: str | None = None


def format_of(path: str | Path) -> str:
    """``jsonl`` or ``csv`` from a file's suffix."""
    suffix = Path(path).suffix.lower()
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
            f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl or .csv"
        )
    return FORMATS[suffix]


def check_file(path: str | Path, *, empty_ok: bool = False, fmt: str | None = None) -> str:
    """The format of an input file that exists (``jsonl`` or ``csv``); one clear error if not.

    An empty file is refused unless ``empty_ok`` (a watched file may be created empty and
    written later; a file named on the command line is then a mistake). ``fmt``: the format
    when the name does not say it (a rotated ``feed.jsonl.1``)."""
    kind = fmt or format_of(path)
    if not Path(path).is_file():
        raise UserInputError(f"{path}: no such file")
    if not empty_ok and Path(path).stat().st_size == 0:
        raise DataError("empty file; no documents", path=path)
    return kind


def iter_jsonl(
    handle: IO[bytes], *, offset: int = 0, line: int = 0, follow: bool = False
) -> Iterator[RawRow]:
    """JSON objects, one a line, from ``offset`` (``line`` lines already read before it)."""
    position = offset
    while True:
        raw = handle.readline()
        if not raw:
            return
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
    state = _QUOTED if quoted else _START
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
    return state == _QUOTED


def _csv_record(handle: IO[bytes], follow: bool) -> tuple[bytes, int, bool] | None:
    """One CSV record: its bytes (physical lines until no quoted field is open), its line count,
    and whether it is complete (False: the file ended inside a quoted field)."""
    parts: list[bytes] = []
    quoted = False
    while True:
        raw = handle.readline()
        if not raw:
            if parts and not follow:
                return b"".join(parts), len(parts), False  # the last record, quotes left open
            return None
        if follow and not raw.endswith(b"\n"):
            return None
        parts.append(raw)
        quoted = _quote_open_after(raw, quoted)
        if not quoted:
            return b"".join(parts), len(parts), True


def _parse_csv(data: bytes) -> list[str]:
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
    data, lines, _complete = record
    try:
        names = [field.strip() for field in _parse_csv(data)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"unreadable CSV header: {exc}", path=name, row=1) from None
    return names, len(data), lines


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
        data, lines, complete = record
        first = line + 1
        position += len(data)
        line += lines
        if not data.strip():
            continue
        if not complete:
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
